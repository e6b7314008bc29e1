import type { Redis } from 'ioredis';
import { withTimeout } from '../../db/database.ts';
import type { Logger } from '../../obs/logger.ts';
import type { JobDispatcher } from '../dispatch.ts';
import type { DispatchableJob } from '../job-store.ts';
import { bullJobOptions, type QueueSet, REDIS_COMMAND_TIMEOUT_MS } from './bullmq-queues.ts';

/** Bound on one batch handed to Redis: a hung Redis must not hang submits. */
const DISPATCH_TIMEOUT_MS = REDIS_COMMAND_TIMEOUT_MS;
const BATCH = 1000;

/**
 * Hands queued rows to BullMQ (job id = job_id, in the queue of its type). Jobs dispatched in the
 * same turn of the event loop, or while a batch is in flight, go out together in one `addBulk` per
 * type, as the executor batches completions. Never throws: when Redis is down the rows simply stay
 * `queued` in the table, `onMissed` is told, and the reconciler enqueues them once Redis is back.
 */
export class BullmqDispatcher implements JobDispatcher {
  private pending: Array<{ job: DispatchableJob; done: () => void }> = [];
  private flushing: Promise<void> | undefined;
  private lastError: string | null = null;
  /** Batches that could not be handed over, since start. */
  failures = 0;

  constructor(
    private readonly redis: Redis,
    private readonly queues: QueueSet,
    private readonly log: Logger,
    /** Called when jobs could not be handed over (they are still `queued` in the table). */
    private readonly onMissed: (count: number, err: Error) => void = () => {},
  ) {}

  /** The last dispatch failure, cleared by the next success. */
  get error(): string | null {
    return this.lastError;
  }

  /**
   * Queues the jobs for the next batch and returns at once: a submit's answer never waits for Redis.
   * Batches go out one at a time, so under load everything submitted while one is in flight joins
   * the next (no timer, no added latency when idle).
   */
  dispatch(jobs: readonly DispatchableJob[]): Promise<void> {
    void this.dispatchAndWait(jobs);
    return Promise.resolve();
  }

  /** As dispatch, resolving once the batch holding the jobs has been written or has failed. */
  dispatchAndWait(jobs: readonly DispatchableJob[]): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let left = jobs.length;
      const done = () => {
        if (--left === 0) resolve();
      };
      for (const job of jobs) this.pending.push({ job, done });
      this.flushing ??= new Promise((r) => setImmediate(r)).then(() => this.flushLoop());
    });
  }

  async withdraw(job: { job_id: string; type: string }): Promise<void> {
    if (this.redis.status !== 'ready') return;
    try {
      // Refused (0) for a job a worker holds; that worker drops it when its claim finds the row cancelled.
      await withTimeout(this.queues.get(job.type).remove(job.job_id), DISPATCH_TIMEOUT_MS, 'Redis');
    } catch (err) {
      this.log.debug({ err, job_id: job.job_id }, 'could not remove a cancelled job from BullMQ; a worker will drop it');
    }
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, BATCH);
      try {
        await this.write(batch.map((b) => b.job));
        if (this.lastError) this.log.info('dispatch to BullMQ works again');
        this.lastError = null;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (this.lastError !== error.message) this.log.warn({ err: error.message, jobs: batch.length }, 'cannot hand jobs to BullMQ; they stay queued in the table and are enqueued once Redis answers');
        this.lastError = error.message;
        this.failures++;
        this.onMissed(batch.length, error);
      } finally {
        for (const b of batch) b.done();
      }
    }
    this.flushing = undefined;
  }

  private async write(jobs: DispatchableJob[]): Promise<void> {
    // Fail at once while disconnected instead of waiting for a connection that may not come.
    if (this.redis.status !== 'ready') throw new Error(`Redis connection is ${this.redis.status}`);
    const byType = new Map<string, DispatchableJob[]>();
    for (const job of jobs) {
      const list = byType.get(job.type);
      if (list) list.push(job);
      else byType.set(job.type, [job]);
    }
    const now = Date.now();
    await withTimeout(
      Promise.all(
        [...byType].map(([type, list]) => this.queues.get(type).addBulk(list.map((job) => ({ name: type, data: {}, opts: bullJobOptions(job, now) })))),
      ),
      DISPATCH_TIMEOUT_MS,
      'Redis',
    );
  }

  /** Waits for batches in flight. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}
