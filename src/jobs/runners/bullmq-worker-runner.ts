import { hostname } from 'node:os';
import { DelayedError, type Job as BullJob, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { EVALOPS_VERSION } from '../../config/version.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Logger } from '../../obs/logger.ts';
import type { Metrics } from '../../obs/metrics.ts';
import type { HandlerRegistry } from '../handler-registry.ts';
import { type ExecutionOutcome, type HeldJob, JobExecutor } from '../job-executor.ts';
import type { JobRunner, RunnerStatus } from '../job-runner.ts';
import { claimJobsById, claimStates, dispatchableJobs, recoverExpiredLeases } from '../job-store.ts';
import { BullmqDispatcher } from './bullmq-dispatcher.ts';
import { createRedis, queueNameFor, QueueSet, redisReady } from './bullmq-queues.ts';
import { WorkerRegistration } from './bullmq-worker-registry.ts';
import { Slots } from './worker-slots.ts';
import { StatusStatement } from './worker-status-statement.ts';
import { StatusWriter } from './worker-status-writer.ts';
import { makeWorkerId } from './inprocess-runner.ts';
import { everyUnlessBusy } from './periodic.ts';

export interface BullmqWorkerRunnerOptions {
  database: DatabaseHandle;
  /** The PostgreSQL URL of `database`: the claims and successes go through connections of their own. */
  databaseUrl: string;
  registry: HandlerRegistry;
  logger: Logger;
  metrics: Metrics;
  redisUrl: string;
  prefix: string;
  /** Shown by `evalops workers ping`; part of the worker id written to `locked_by`. */
  name: string;
  concurrency: number;
  /** The job types (queues) this worker takes; each must have a handler in `registry`. */
  types: readonly string[];
  leaseMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  metricsUrl: string | null;
}

/**
 * A delivery that finds every slot of a multi-type worker busy waits this long for one, then goes
 * back to BullMQ as delayed by SLOT_RETRY_MS, where an idle worker can take it.
 */
const SLOT_WAIT_MS = 100;
const SLOT_RETRY_MS = 500;

/** Status statements (claims and successes, batched) a worker keeps in flight at once. */
const STATEMENTS_IN_FLIGHT = 2;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why a delivered job was not run here. */
type DropReason = 'missing' | 'held-elsewhere' | 'finished';

/**
 * A queue-mode worker: takes job ids from the BullMQ queues of its types and runs them through the
 * same JobExecutor as the in-process runner.
 *
 * The row decides, BullMQ delivers. A delivered id is claimed with one conditional UPDATE (queued and
 * due -> running), batched with the other claims and the successes of the moment (StatusWriter); a
 * worker that does not get the row drops the delivery (the row is running elsewhere, finished, or
 * gone), or puts it back as delayed when the row is queued for later (a retry's backoff, a `run_at`).
 * While a job runs, its row's lease is renewed like the in-process runner's; cancellation arrives by
 * NOTIFY (and the lease renewal, as a fallback). A success completes the delivery at once and reaches
 * the row in the next batched statement (see `run`).
 *
 * Crash recovery: BullMQ's lock on a delivery lasts JOB_LEASE_MS, like the row's lease. A SIGKILLed
 * worker's rows are taken back by lease expiry (any worker's or the API's sweep: queued again while
 * attempts remain, else failed as lost) and its deliveries by BullMQ's stalled-job check, which puts
 * them back in the wait list; the next worker to receive one claims the requeued row, or runs the
 * sweep itself first when the lease has expired but no one has swept yet. BullMQ's own stall limit is
 * set high: the row's attempts are what bound a job that keeps killing its workers.
 */
export class BullmqWorkerRunner implements JobRunner {
  readonly mode = 'queue' as const;
  readonly workerId: string;
  private readonly executor: JobExecutor;
  private readonly log: Logger;
  private readonly startedAt = new Date().toISOString();
  private readonly workers: Worker[] = [];
  private readonly workerOfType = new Map<string, Worker>();
  /** Deliveries of each type in this worker's processors (running or waiting for a slot). */
  private readonly inHand = new Map<string, number>();
  private readonly connections: Redis[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unlisten: Array<() => Promise<void>> = [];
  private readonly inflight = new Set<Promise<ExecutionOutcome>>();
  private readonly statement: StatusStatement;
  private readonly writer: StatusWriter;
  private readonly slots: Slots | undefined;
  private readonly dropped: Counter<'reason'>;
  private redis: Redis | undefined;
  private queues: QueueSet | undefined;
  private dispatcher: BullmqDispatcher | undefined;
  private registration: WorkerRegistration | undefined;
  private running = false;
  private stopping = false;
  private lastError: string | null = null;

  constructor(private readonly options: BullmqWorkerRunnerOptions) {
    this.workerId = makeWorkerId(options.name);
    this.log = options.logger.child({ component: 'worker', worker: options.name, worker_id: this.workerId });
    this.statement = new StatusStatement(options.databaseUrl, STATEMENTS_IN_FLIGHT, this.workerId, options.leaseMs, this.log);
    this.writer = new StatusWriter((completions, claimIds) => this.statement.write(completions, claimIds), STATEMENTS_IN_FLIGHT);
    this.executor = new JobExecutor({
      db: options.database.db,
      workerId: this.workerId,
      registry: options.registry,
      logger: this.log,
      metrics: options.metrics,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
      storeCompletion: (completion) => this.writer.complete(completion),
    });
    // One BullMQ Worker per type, each at full concurrency; with several types a shared pool of slots
    // keeps the total at `concurrency`.
    this.slots = options.types.length > 1 ? new Slots(options.concurrency) : undefined;
    const registers = [options.metrics.registry];
    const executor = this.executor;
    new Gauge({ name: 'evalops_worker_jobs_active', help: 'Jobs this worker is running now', registers, collect() { this.set(executor.activeCount); } });
    new Gauge({ name: 'evalops_worker_concurrency', help: 'Jobs this worker runs at most at once', registers }).set(options.concurrency);
    new Gauge({ name: 'evalops_worker_info', help: 'Constant 1, labelled with the worker name, host and version', labelNames: ['name', 'host', 'version'], registers }).set(
      { name: options.name, host: hostname(), version: EVALOPS_VERSION },
      1,
    );
    this.dropped = new Counter({
      name: 'evalops_worker_deliveries_dropped_total',
      help: 'BullMQ deliveries not run because the row was not claimable: running elsewhere, finished, or missing',
      labelNames: ['reason'],
      registers,
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    try {
      await this.startParts();
    } catch (err) {
      // Release what was acquired before the failure; the caller sees the error.
      for (const timer of this.timers) clearInterval(timer);
      await Promise.allSettled(this.unlisten.map((stop) => stop()));
      await Promise.allSettled(this.workers.map((w) => w.close(true)));
      for (const c of this.connections) c.disconnect();
      await this.statement.close().catch(() => {});
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { redisUrl, prefix, name, types, concurrency, leaseMs, database } = this.options;
    this.redis = this.connection('commands', 'commands');
    await redisReady(this.redis, 10_000);
    this.queues = new QueueSet(this.redis, prefix, (err) => this.noteError(err));
    this.dispatcher = new BullmqDispatcher(this.redis, this.queues, this.log);

    this.unlisten.push(
      await database.listen('evalops_job_cancel', (jobId) => {
        if (this.executor.abort(jobId, 'cancelled', 'cancel requested')) this.log.info({ job_id: jobId }, 'cancelling running job');
      }),
    );
    const every = (ms: number, fn: () => Promise<unknown>) => this.timers.push(everyUnlessBusy(ms, fn, (err) => this.noteError(err)));
    every(Math.max(200, Math.floor(leaseMs / 3)), () => this.executor.renewHeldLeases(leaseMs));
    every(Math.max(500, Math.floor(leaseMs / 2)), () => this.sweep());

    this.registration = new WorkerRegistration(this.redis, this.connection('blocking', 'registry'), prefix, () => this.describe(), this.log);
    await this.registration.start();

    this.running = true;
    // One connection carries the commands of every type's BullMQ Worker (fetch, complete, lock
    // renewal); BullMQ adds a blocking connection of its own per Worker for waiting on an empty queue.
    const queueConnection = this.connection('blocking', 'queues');
    for (const type of types) {
      const worker = new Worker(queueNameFor(type), (job, token) => this.processOfType(type, job, token), {
        connection: queueConnection,
        prefix,
        name,
        concurrency,
        // The delivery's lock lasts as long as the row's lease: a dead worker loses both together.
        lockDuration: leaseMs,
        stalledInterval: Math.max(1000, Math.floor(leaseMs / 2)),
        maxStalledCount: 1000,
        drainDelay: 5,
      });
      worker.on('error', (err) => this.noteError(err));
      worker.on('failed', (job, err) => this.log.error({ err, job_id: job?.id, type }, 'BullMQ reports a failed delivery'));
      worker.on('stalled', (jobId) => this.log.warn({ job_id: jobId, type }, 'BullMQ put back a delivery whose worker stopped renewing its lock'));
      this.workers.push(worker);
      this.workerOfType.set(type, worker);
    }
    void this.sweep().catch((err) => this.noteError(err));
    this.log.info({ types, concurrency, lease_ms: leaseMs, prefix, redis: redisUrl.replace(/\/\/[^@/]*@/, '//***@') }, 'worker started');
  }

  private connection(role: 'commands' | 'blocking', purpose: string): Redis {
    const client = createRedis(this.options.redisUrl, role, `evalops-worker:${this.options.name}:${purpose}`);
    this.connections.push(client);
    return client;
  }

  private describe() {
    return {
      worker_id: this.workerId,
      name: this.options.name,
      host: hostname(),
      pid: process.pid,
      concurrency: this.options.concurrency,
      active: this.executor.activeCount,
      types: [...this.options.types],
      started_at: this.startedAt,
      metrics_url: this.options.metricsUrl,
      version: EVALOPS_VERSION,
    };
  }

  /** Counts the deliveries of each type in hand, so the per-type fetch limits follow the free slots. */
  private async processOfType(type: string, job: BullJob, token: string | undefined): Promise<unknown> {
    this.inHand.set(type, (this.inHand.get(type) ?? 0) + 1);
    this.rebalance();
    try {
      return await this.process(job, token);
    } finally {
      this.inHand.set(type, (this.inHand.get(type) ?? 1) - 1);
      this.rebalance();
    }
  }

  /**
   * With several types, each type's BullMQ Worker may fetch only what the shared slots can run: its
   * deliveries in hand plus the free slots (at least 1, BullMQ's minimum). So a worker busy with one
   * type does not take deliveries of another that an idle worker could run; the one delivery per
   * other type it may still fetch waits SLOT_WAIT_MS for a slot, then goes back to BullMQ.
   */
  private rebalance(): void {
    if (!this.slots) return;
    const free = this.slots.available;
    for (const [type, worker] of this.workerOfType) {
      worker.concurrency = Math.max(1, Math.min(this.options.concurrency, (this.inHand.get(type) ?? 0) + free));
    }
  }

  /** The BullMQ processor: claim the row, run it, and leave the delivery in the state the row says. */
  private async process(job: BullJob, token: string | undefined): Promise<unknown> {
    const jobId = job.id!;
    // Not a job id at all (something else wrote to this queue): no row can match it.
    if (!UUID.test(jobId)) return this.drop(jobId, 'missing');
    if (this.stopping) return this.handBack(job, token);
    if (this.slots) {
      const slot = await this.slots.acquire(SLOT_WAIT_MS);
      if (slot === 'refused') return this.handBack(job, token);
      // Busy with other types: let an idle worker have it rather than hold it here.
      if (slot === 'timeout') return this.delay(job, token, SLOT_RETRY_MS);
    }
    this.rebalance();
    try {
      if (this.stopping) return await this.handBack(job, token);
      let row: HeldJob | undefined;
      try {
        row = await this.writer.claim(jobId);
        if (!row) row = await this.claimAfterMiss(job, token);
      } catch (err) {
        if (err instanceof DelayedError) throw err;
        // The database is unreachable: try this delivery again in a second.
        this.noteError(err);
        return await this.delay(job, token, 1000);
      }
      if (!row) return undefined;
      return await this.run(job, token, row);
    } finally {
      this.slots?.release();
      this.rebalance();
    }
  }

  /** The claim missed: find out why, and drop, delay or retry the delivery. */
  private async claimAfterMiss(job: BullJob, token: string | undefined): Promise<HeldJob | undefined> {
    const jobId = job.id!;
    const db = this.options.database.db;
    for (let attempt = 0; ; attempt++) {
      const [state] = await claimStates(db, [jobId]);
      if (!state) return this.drop(jobId, 'missing');
      if (state.status === 'queued' && state.due_in_ms > 0) return this.delay(job, token, state.due_in_ms);
      if (state.status === 'running' && !state.lease_expired) return this.drop(jobId, 'held-elsewhere');
      if (state.status !== 'queued' && state.status !== 'running') return this.drop(jobId, 'finished');
      if (attempt >= 2) return this.delay(job, token, 250);
      // Due but not claimed (another claimer held its row lock for a moment), or a dead holder's lease
      // expired and no sweep has run yet: sweep, then claim once more.
      if (state.status === 'running') await this.sweep();
      else await new Promise((r) => setTimeout(r, 20));
      const [row] = await claimJobsById(db, this.workerId, [jobId], this.options.leaseMs);
      if (row) return row;
    }
  }

  /**
   * Runs a claimed job. Its delivery is completed in BullMQ as soon as the handler has succeeded: the
   * success goes to the table in the next batched statement, together with the claims of the
   * deliveries that the completion fetches, so a slot waits for one statement per job rather than
   * two. Until that write lands the row stays `running` under this worker's renewed lease; should the
   * write fail or the worker die first, the row is taken back like any unrecorded job (lease expiry,
   * then the sweep and the API's reconciler enqueue it again). Any other outcome is stored before
   * the delivery is settled to match it.
   */
  private async run(job: BullJob, token: string | undefined, row: HeldJob): Promise<unknown> {
    const started = performance.now();
    let succeeded: () => void = () => {};
    const handlerSucceeded = new Promise<'succeeded'>((resolve) => (succeeded = () => resolve('succeeded')));
    const running = this.executor.execute(row, { onSucceeded: () => succeeded() });
    this.inflight.add(running);
    const recorded = running.then((outcome) => {
      this.inflight.delete(running);
      this.log.info({ job_id: row.job_id, type: row.type, attempt: row.attempts, outcome, duration_ms: Math.round((performance.now() - started) * 100) / 100 }, 'job finished');
      return outcome;
    });
    const first = await Promise.race([handlerSucceeded, recorded]);
    if (first === 'succeeded') {
      void recorded.then((outcome) => (outcome === 'succeeded' ? undefined : this.redispatch(row.job_id, outcome)));
      return undefined;
    }
    const outcome = first;
    if (outcome === 'handed-back') return this.handBack(job, token);
    if (outcome === 'retry' || outcome === 'lost') {
      // The row is queued again (a retry's backoff, or a sweep took it back): keep the delivery until due.
      const [state] = await claimStates(this.options.database.db, [row.job_id]).catch(() => [undefined]);
      if (state?.status === 'queued') return this.delay(job, token, Math.max(0, state.due_in_ms));
    }
    return undefined;
  }

  /**
   * A job whose delivery was completed on success but whose success could not be stored: when its row
   * is queued again (a retry, a hand-back), enqueue it now rather than at the reconciler's next pass.
   */
  private async redispatch(jobId: string, outcome: ExecutionOutcome): Promise<void> {
    try {
      const jobs = await dispatchableJobs(this.options.database.db, { jobIds: [jobId], limit: 1 });
      if (jobs.length) await this.dispatcher?.dispatchAndWait(jobs);
    } catch (err) {
      // The reconciler enqueues it within QUEUE_RECONCILE_MS; a row left running comes back by lease expiry.
      this.log.warn({ err: (err as Error).message, job_id: jobId, outcome }, 'could not enqueue a job again after its success failed to store');
    }
  }

  private drop(jobId: string, reason: DropReason): undefined {
    this.dropped.inc({ reason });
    this.log.debug({ job_id: jobId, reason }, 'dropped a delivery: the row is not claimable');
    return undefined;
  }

  /** Puts the delivery back as delayed by `ms`. */
  private async delay(job: BullJob, token: string | undefined, ms: number): Promise<never> {
    try {
      await job.moveToDelayed(Date.now() + Math.ceil(ms), token);
    } catch (err) {
      // Lock lost or Redis gone: BullMQ's stalled check (or the API's reconciler) brings it back.
      this.log.warn({ err: (err as Error).message, job_id: job.id }, 'could not delay a delivery');
    }
    throw new DelayedError();
  }

  /** Puts the delivery back in the wait list for another worker (shutdown). */
  private async handBack(job: BullJob, token: string | undefined): Promise<never> {
    try {
      await job.moveToWait(token);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, job_id: job.id }, 'could not hand a delivery back');
    }
    throw new WaitingError();
  }

  /** Takes back rows whose holder stopped renewing its lease and hands the requeued ones to BullMQ. */
  private async sweep(): Promise<void> {
    const db = this.options.database.db;
    const recovered = await recoverExpiredLeases(db);
    this.lastError = null;
    if (recovered.length === 0) return;
    for (const job of recovered) {
      this.log.warn({ job_id: job.job_id, type: job.type, status: job.status }, 'took back a job whose runner stopped renewing its lease');
      if (job.status !== 'queued') this.options.metrics.jobsFinished.inc({ type: job.type, status: job.status });
    }
    const queued = recovered.filter((j) => j.status === 'queued').map((j) => j.job_id);
    // Usually a no-op (BullMQ still holds the dead worker's delivery, and its stalled check requeues
    // it); it matters when Redis lost the delivery.
    if (queued.length) await this.dispatcher?.dispatchAndWait(await dispatchableJobs(db, { jobIds: queued, limit: queued.length }));
  }

  private noteError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError !== message) this.log.error({ err }, 'worker cannot reach the database or Redis; retrying');
    this.lastError = message;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopping = true;
    this.slots?.refuseWaiters();
    // Stop fetching; each close resolves once its processors have returned.
    const closing = Promise.allSettled(this.workers.map((w) => w.close()));
    const all = () => Promise.allSettled([...this.inflight]);
    if (this.inflight.size) {
      this.log.info({ running: this.inflight.size, grace_ms: graceMs }, 'waiting for running jobs to finish');
      const timer = new Promise<'timeout'>((r) => setTimeout(r, graceMs, 'timeout').unref());
      if ((await Promise.race([all(), timer])) === 'timeout') {
        this.executor.abortAll('shutdown', 'the process is shutting down');
        // Handlers that ignore their signal are left behind; their leases expire and a sweep requeues them.
        await Promise.race([all(), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
    }
    if ((await Promise.race([closing, new Promise((r) => setTimeout(r, 5000, 'timeout').unref())])) === 'timeout') {
      await Promise.allSettled(this.workers.map((w) => w.close(true)));
    }
    await this.executor.flush();
    await this.writer.drain();
    await this.statement.close().catch((err) => this.log.warn({ err: (err as Error).message }, 'could not close the status connections'));
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled(this.unlisten.map((stop) => stop()));
    await this.registration?.stop(this.workerId);
    await this.dispatcher?.drain();
    await this.queues?.close();
    for (const c of this.connections) c.disconnect();
    this.log.info('worker stopped');
  }

  status(): RunnerStatus {
    return { mode: this.mode, running: this.running, workerId: this.workerId, concurrency: this.options.concurrency, active: this.executor.activeCount, lastError: this.lastError };
  }
}
