import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { DatabaseHandle } from '../../db/database.ts';
import type { JobRow } from '../../db/schema.ts';
import type { Logger } from '../../obs/logger.ts';
import type { Metrics } from '../../obs/metrics.ts';
import type { HandlerRegistry } from '../handler-registry.ts';
import { JobExecutor } from '../job-executor.ts';
import type { JobRunner, RunnerStatus } from '../job-runner.ts';
import { claimJobs, recoverExpiredLeases, renewLeases } from '../job-store.ts';

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
}

/** A unique name for one runner in one process, readable in `locked_by`. */
export function makeWorkerId(kind: string): string {
  return `${kind}:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * The embedded runner: the jobs table is the queue. Claims with FOR UPDATE SKIP LOCKED, wakes on
 * NOTIFY (both PostgreSQL and PGlite deliver it) and polls as a fallback and for delayed jobs,
 * renews leases while jobs run, and takes back jobs whose holder died.
 */
export class InProcessRunner implements JobRunner {
  readonly mode = 'inprocess' as const;
  readonly workerId = makeWorkerId('inprocess');
  private readonly executor: JobExecutor;
  private readonly log: Logger;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unlisten: Array<() => Promise<void>> = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private running = false;
  private claiming = false;
  /** Set by a wake-up that arrived while claiming, or after a full batch: more work may be due. */
  private moreDue = false;
  private lastError: string | null = null;

  constructor(private readonly options: InProcessRunnerOptions) {
    this.log = options.logger.child({ component: 'runner', worker_id: this.workerId });
    this.executor = new JobExecutor({
      db: options.database.db,
      workerId: this.workerId,
      registry: options.registry,
      logger: this.log,
      metrics: options.metrics,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { database, pollMs, leaseMs } = this.options;
    this.unlisten.push(await database.listen('evalops_jobs', () => this.wake()));
    this.unlisten.push(
      await database.listen('evalops_job_cancel', (jobId) => {
        if (this.executor.abort(jobId, 'cancelled', 'cancel requested')) this.log.info({ job_id: jobId }, 'cancelling running job');
      }),
    );
    const every = (ms: number, fn: () => Promise<unknown> | void) => {
      const timer = setInterval(() => void Promise.resolve(fn()).catch((err) => this.noteError(err)), ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(pollMs, () => this.wake());
    every(Math.max(200, Math.floor(leaseMs / 3)), () => this.heartbeat());
    every(Math.max(500, Math.floor(leaseMs / 2)), () => this.recover());
    await this.recover().catch((err) => this.noteError(err));
    this.wake();
    this.log.info({ concurrency: this.options.concurrency, lease_ms: leaseMs }, 'in-process job runner started');
  }

  /** Claims as many due jobs as there are free slots, repeating while batches come back full. */
  wake(): void {
    if (!this.running) return;
    if (this.claiming) {
      this.moreDue = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop()
      .catch((err) => this.noteError(err))
      .finally(() => {
        this.claiming = false;
      });
  }

  private async claimLoop(): Promise<void> {
    while (this.running) {
      const free = this.options.concurrency - this.executor.activeCount;
      if (free <= 0) {
        // At capacity: come back when a slot frees.
        this.moreDue = true;
        return;
      }
      this.moreDue = false;
      const jobs = await claimJobs(this.options.database.db, this.workerId, free, this.options.leaseMs, this.options.registry.types());
      this.lastError = null;
      for (const job of jobs) this.run(job);
      if (jobs.length < free && !this.moreDue) return;
    }
  }

  private run(job: JobRow): void {
    const done = this.executor.execute(job).finally(() => {
      this.inflight.delete(done);
      if (this.moreDue) this.wake();
    });
    this.inflight.add(done);
  }

  private async heartbeat(): Promise<void> {
    const held = this.executor.activeIds();
    if (held.length === 0) return;
    const renewed = await renewLeases(this.options.database.db, this.workerId, held, this.options.leaseMs);
    const still = new Map(renewed.map((r) => [r.job_id, r.cancel_requested_at]));
    for (const id of held) {
      if (!still.has(id)) this.executor.abort(id, 'lease-lost', 'lease expired and was taken back');
      else if (still.get(id)) this.executor.abort(id, 'cancelled', 'cancel requested');
    }
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
