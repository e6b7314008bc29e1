import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { DatabaseHandle } from '../../db/database.ts';
import type { JobRow } from '../../db/schema.ts';
import type { Logger } from '../../obs/logger.ts';
import type { Metrics } from '../../obs/metrics.ts';
import type { JobDispatcher, LocalWakeUp } from '../dispatch.ts';
import type { HandlerRegistry } from '../handler-registry.ts';
import { JobExecutor } from '../job-executor.ts';
import type { JobRunner, RunnerStatus } from '../job-runner.ts';
import { analyzeJobs, claimJobs, completeAndClaimDue, completeJobs, type DispatchableJob, jobsStatisticsStale, recoverExpiredLeases } from '../job-store.ts';
import { ClaimWriter } from './claim-writer.ts';
import { everyUnlessBusy } from './periodic.ts';

export interface InProcessRunnerOptions {
  database: DatabaseHandle;
  registry: HandlerRegistry;
  logger: Logger;
  metrics: Metrics;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often to check whether the table's planner statistics are stale. @defaultValue 10 s */
  analyzeCheckMs?: number;
}

/** ANALYZE once more rows changed than this plus a tenth of the table (autovacuum's rule, which PGlite lacks). */
const ANALYZE_BASE_ROWS = 1000;
const ANALYZE_SCALE = 0.1;

/** A unique name for one runner in one process, readable in `locked_by`. */
export function makeWorkerId(kind: string): string {
  return `${kind}:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * The embedded runner: the jobs table is the queue. Claims with FOR UPDATE SKIP LOCKED, wakes on
 * NOTIFY (both PostgreSQL and PGlite deliver it) and polls as a fallback and for delayed jobs,
 * renews leases while jobs run, and takes back jobs whose holder died. Successes and claims share
 * statements (ClaimWriter).
 *
 * It is also the JobService's dispatcher: dispatch() wakes it directly, so a submit's INSERT sends
 * no NOTIFY per commit (they would queue on PostgreSQL's notification lock); the submits announce
 * new rows to the other API processes with a NOTIFY now and then (JobInsertBatcher) whose payload
 * is this runner's id, which its own listener ignores.
 */
export class InProcessRunner implements JobRunner, JobDispatcher {
  readonly mode = 'inprocess' as const;
  readonly workerId = makeWorkerId('inprocess');
  readonly localWakeUp: LocalWakeUp;
  private readonly executor: JobExecutor;
  private readonly log: Logger;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unlisten: Array<() => Promise<void>> = [];
  private readonly inflight = new Set<Promise<unknown>>();
  /** Claims, and the successes of finished jobs, in shared statements. */
  private readonly claims: ClaimWriter;
  private running = false;
  private lastError: string | null = null;

  constructor(private readonly options: InProcessRunnerOptions) {
    this.log = options.logger.child({ component: 'runner', worker_id: this.workerId });
    const { db } = options.database;
    this.claims = new ClaimWriter(
      async (completions, claim) => {
        const types = options.registry.types();
        if (claim === 0) return completeJobs(db, this.workerId, completions).then(() => []);
        if (completions.length === 0) return claimJobs(db, this.workerId, claim, options.leaseMs, types);
        return completeAndClaimDue(db, this.workerId, completions, claim, options.leaseMs, types);
      },
      {
        free: () => options.concurrency - this.executor.activeCount,
        claimable: () => this.running,
        claimed: (jobs) => {
          this.lastError = null;
          for (const job of jobs) this.run(job);
        },
        failed: (err) => this.noteError(err),
      },
    );
    this.executor = new JobExecutor({
      db,
      workerId: this.workerId,
      registry: options.registry,
      logger: this.log,
      metrics: options.metrics,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
      storeCompletion: (completion) => this.claims.complete(completion),
    });
    // PGlite admits one process: nobody else to tell.
    this.localWakeUp = { senderId: this.workerId, notifyPeers: options.database.kind === 'postgres', onNotifyError: (err) => this.noteError(err) };
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { database, pollMs, leaseMs } = this.options;
    this.unlisten.push(
      await database.listen('evalops_jobs', (sender) => {
        if (sender !== this.workerId) this.wake();
      }),
    );
    this.unlisten.push(
      await database.listen('evalops_job_cancel', (jobId) => {
        if (this.executor.abort(jobId, 'cancelled', 'cancel requested')) this.log.info({ job_id: jobId }, 'cancelling running job');
      }),
    );
    const every = (ms: number, fn: () => Promise<unknown> | void) => this.timers.push(everyUnlessBusy(ms, fn, (err) => this.noteError(err)));
    every(pollMs, () => this.wake());
    every(Math.max(200, Math.floor(leaseMs / 3)), () => this.executor.renewHeldLeases(leaseMs));
    every(Math.max(500, Math.floor(leaseMs / 2)), () => this.recover());
    every(this.options.analyzeCheckMs ?? 10_000, () => this.analyzeIfStale());
    await this.recover().catch((err) => this.noteError(err));
    this.wake();
    this.log.info({ concurrency: this.options.concurrency, lease_ms: leaseMs }, 'in-process job runner started');
  }

  /** Claims as many due jobs as there are free slots, repeating while claims come back full. */
  wake(): void {
    if (!this.running) return;
    this.claims.wantClaim();
  }

  private run(job: JobRow): void {
    const done = this.executor.execute(job).finally(() => {
      this.inflight.delete(done);
      // At capacity when the last claim was wanted: this slot is free now.
      if (this.claims.claimWanted) this.wake();
    });
    this.inflight.add(done);
  }

  /** Jobs submitted or retried in this process: claim them now (never rejects). */
  dispatch(_jobs: readonly DispatchableJob[]): Promise<void> {
    this.wake();
    return Promise.resolve();
  }

  /** Nothing to withdraw: a cancelled row is simply no longer claimable. */
  withdraw(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Keeps the planner's statistics of `jobs` fresh as finished rows pile up, so the claim keeps its
   * plan; PostgreSQL's autovacuum would get there minutes later, PGlite never.
   */
  private async analyzeIfStale(): Promise<void> {
    const { db } = this.options.database;
    if (!(await jobsStatisticsStale(db, ANALYZE_BASE_ROWS, ANALYZE_SCALE))) return;
    const started = performance.now();
    await analyzeJobs(db);
    this.log.debug({ duration_ms: Math.round(performance.now() - started) }, 'analyzed the jobs table');
  }

  private async recover(): Promise<void> {
    const recovered = await recoverExpiredLeases(this.options.database.db);
    for (const job of recovered) {
      this.log.warn({ job_id: job.job_id, type: job.type, status: job.status }, 'took back a job whose runner stopped renewing its lease');
      if (job.status !== 'queued') this.options.metrics.jobsFinished.inc({ type: job.type, status: job.status });
    }
    if (recovered.some((j) => j.status === 'queued')) this.wake();
  }

  private noteError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError !== message) this.log.error({ err }, 'job runner cannot reach the database; retrying');
    this.lastError = message;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled(this.unlisten.map((stop) => stop()));
    const all = () => Promise.allSettled([...this.inflight]);
    if (this.inflight.size) {
      this.log.info({ running: this.inflight.size, grace_ms: graceMs }, 'waiting for running jobs to finish');
      const timer = new Promise<'timeout'>((r) => setTimeout(r, graceMs, 'timeout').unref());
      if ((await Promise.race([all(), timer])) === 'timeout') {
        this.executor.abortAll('shutdown', 'the process is shutting down');
        // Handlers that ignore their signal are left behind; their leases expire and recovery requeues them.
        await Promise.race([all(), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
    }
    await this.executor.flush();
    this.log.info('in-process job runner stopped');
  }

  status(): RunnerStatus {
    return {
      mode: this.mode,
      running: this.running,
      workerId: this.workerId,
      concurrency: this.options.concurrency,
      active: this.executor.activeCount,
      lastError: this.lastError,
    };
  }
}
