import type { Redis } from 'ioredis';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Logger } from '../../obs/logger.ts';
import type { Metrics } from '../../obs/metrics.ts';
import type { JobDispatcher } from '../dispatch.ts';
import type { HandlerRegistry } from '../handler-registry.ts';
import type { JobRunner, RunnerInspection, RunnerStatus } from '../job-runner.ts';
import { type DispatchableJob, dispatchableJobs, recoverExpiredLeases } from '../job-store.ts';
import { BullmqDispatcher } from './bullmq-dispatcher.ts';
import { brokerCounts, createRedis, QueueSet } from './bullmq-queues.ts';
import { Reconciler } from './bullmq-reconciler.ts';
import { listLiveWorkers } from './bullmq-worker-registry.ts';
import { makeWorkerId } from './inprocess-runner.ts';
import { everyUnlessBusy } from './periodic.ts';

export interface BullmqDispatchRunnerOptions {
  database: DatabaseHandle;
  registry: HandlerRegistry;
  logger: Logger;
  metrics: Metrics;
  redisUrl: string;
  prefix: string;
  reconcileMs: number;
  leaseMs: number;
}

/**
 * The API's side of queue mode. It runs no job: it hands new and retried rows to BullMQ (as the
 * JobService's dispatcher), re-enqueues queued rows BullMQ lacks (the reconciler), takes back rows
 * whose worker stopped renewing its lease, and reports workers and backlog to /health/detailed.
 * `evalops worker` processes run the jobs.
 */
export class BullmqDispatchRunner implements JobRunner, JobDispatcher {
  readonly mode = 'queue' as const;
  readonly workerId = makeWorkerId('api');
  private readonly log: Logger;
  private redis: Redis | undefined;
  private queues: QueueSet | undefined;
  private dispatcher: BullmqDispatcher | undefined;
  private reconciler: Reconciler | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private running = false;
  private sweepError: string | null = null;

  constructor(private readonly options: BullmqDispatchRunnerOptions) {
    this.log = options.logger.child({ component: 'dispatcher', worker_id: this.workerId });
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { redisUrl, prefix, database, registry, reconcileMs, leaseMs } = this.options;
    const redis = createRedis(redisUrl, 'commands', `evalops-api:${process.pid}`);
    this.redis = redis;
    this.queues = new QueueSet(redis, prefix);
    const reconcilerRef: { current?: Reconciler } = {};
    this.dispatcher = new BullmqDispatcher(redis, this.queues, this.log, () => reconcilerRef.current?.markDirty());
    this.reconciler = new Reconciler(database.db, redis, this.queues, this.dispatcher, () => registry.types(), this.log);
    reconcilerRef.current = this.reconciler;
    this.running = true;
    // Redis back after an outage (or a restart that lost every key): check every row at once.
    let wasDown = false;
    redis.on('close', () => {
      wasDown = true;
    });
    redis.on('ready', () => {
      if (!wasDown) return;
      wasDown = false;
      this.log.info('Redis is back; reconciling the queued jobs');
      this.reconciler?.markDirty();
      void this.reconciler?.tick();
    });
    const every = (ms: number, fn: () => Promise<unknown>) => this.timers.push(everyUnlessBusy(ms, fn));
    every(reconcileMs, () => this.reconciler!.tick());
    every(Math.max(500, Math.floor(leaseMs / 2)), () => this.sweep());
    // Not awaited: the API starts (and accepts jobs) while Redis is down.
    void this.reconciler.tick();
    this.log.info({ prefix, reconcile_ms: reconcileMs }, 'queue mode: jobs are dispatched through BullMQ to `evalops worker` processes');
  }

  /** Takes back rows whose worker died (lease expired) and hands those queued again to BullMQ. */
  private async sweep(): Promise<void> {
    try {
      const recovered = await recoverExpiredLeases(this.options.database.db);
      this.sweepError = null;
      if (recovered.length === 0) return;
      for (const job of recovered) {
        this.log.warn({ job_id: job.job_id, type: job.type, status: job.status }, 'took back a job whose worker stopped renewing its lease');
        if (job.status !== 'queued') this.options.metrics.jobsFinished.inc({ type: job.type, status: job.status });
      }
      const queued = recovered.filter((j) => j.status === 'queued').map((j) => j.job_id);
      if (queued.length) await this.dispatcher?.dispatchAndWait(await dispatchableJobs(this.options.database.db, { jobIds: queued, limit: queued.length }));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.sweepError !== message) this.log.error({ err }, 'lease sweep cannot reach the database; retrying');
      this.sweepError = message;
    }
  }

  dispatch(jobs: readonly DispatchableJob[]): Promise<void> {
    return this.dispatcher ? this.dispatcher.dispatch(jobs) : Promise.resolve();
  }

  withdraw(job: { job_id: string; type: string }): Promise<void> {
    return this.dispatcher ? this.dispatcher.withdraw(job) : Promise.resolve();
  }

  /** Runs one reconciler pass now (tests, and `evalops queue stats --reconcile` through the API). */
  reconcileNow(): Promise<void> {
    this.reconciler?.markDirty();
    return this.reconciler?.tick() ?? Promise.resolve();
  }

  async inspect(): Promise<RunnerInspection> {
    if (!this.redis || !this.queues) throw new Error('the dispatcher is not started');
    if (this.redis.status !== 'ready') throw new Error(`cannot reach Redis (connection ${this.redis.status})`);
    const workers = await listLiveWorkers(this.redis, this.options.prefix);
    const broker = { waiting: 0, delayed: 0, active: 0, failed: 0 };
    for (const type of this.options.registry.types()) {
      const c = await brokerCounts(this.queues.get(type));
      broker.waiting += c.waiting;
      broker.delayed += c.delayed;
      broker.active += c.active;
      broker.failed += c.failed;
    }
    const served = new Set(workers.flatMap((w) => w.types));
    return {
      liveWorkers: workers.length,
      details: {
        live_workers: workers.length,
        workers: workers.map((w) => ({ name: w.name, host: w.host, pid: w.pid, concurrency: w.concurrency, active: w.active, types: w.types, heartbeat_at: w.heartbeat_at })),
        types_without_worker: workers.length ? this.options.registry.types().filter((t) => !served.has(t)) : this.options.registry.types(),
        broker_backlog: broker,
        redis_prefix: this.options.prefix,
      },
    };
  }

  status(): RunnerStatus {
    return {
      mode: this.mode,
      running: this.running,
      workerId: this.workerId,
      concurrency: 0,
      active: 0,
      lastError: this.dispatcher?.error ?? this.reconciler?.error ?? this.sweepError ?? null,
    };
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    await this.dispatcher?.drain();
    await this.reconciler?.idle();
    await this.queues?.close();
    this.redis?.disconnect();
    this.log.info('queue dispatcher stopped');
  }
}
