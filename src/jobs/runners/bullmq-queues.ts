import { Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { DispatchableJob } from '../job-store.ts';

/**
 * What the API, the workers and the CLI agree on about BullMQ: queue names, Redis keys, connection
 * options and how a row maps to a BullMQ job. BullMQ carries only a token (the job id, in the queue of
 * its type); the payload and every status stay in the jobs table.
 */

/**
 * One BullMQ queue per job type, so `evalops worker --types` subscribes to exactly the types it runs.
 * BullMQ refuses `:` in queue names; types are encoded so none appears.
 */
export function queueNameFor(type: string): string {
  return `jobs.${type.replaceAll('%', '%25').replaceAll(':', '%3A')}`;
}

export function typeOfQueue(queueName: string): string | undefined {
  if (!queueName.startsWith('jobs.')) return undefined;
  return queueName.slice(5).replaceAll('%3A', ':').replaceAll('%25', '%');
}

/** Redis keys of the worker registry, beside the queues under the same prefix. */
export const registryKeys = (prefix: string) => ({
  /** Sorted set: worker id -> last heartbeat (ms). Members whose info key expired are dead. */
  index: `${prefix}:workers`,
  /** String with the worker's JSON self-description, expiring unless renewed. */
  info: (workerId: string) => `${prefix}:workers:${workerId}`,
  /** Pub/sub channel of `evalops workers ping`. */
  ping: `${prefix}:workers:ping`,
  /** List a pinged worker pushes its answer on. */
  reply: (token: string) => `${prefix}:workers:reply:${token}`,
});

/** How often a worker renews its registry entry; it expires after three missed beats. */
export const WORKER_HEARTBEAT_MS = 2000;
export const WORKER_TTL_MS = 3 * WORKER_HEARTBEAT_MS;

/**
 * Our priority (higher first, -1000..1000) as BullMQ's (1 is highest). Every job gets one: BullMQ
 * serves jobs without a priority before all prioritised ones, so leaving the default 0 unmapped would
 * run it before a job of priority 10.
 */
export function bullPriority(priority: number): number {
  return 1001 - Math.max(-1000, Math.min(1000, Math.trunc(priority)));
}

/** BullMQ options for a row: id = job_id, priority mapped, `run_at` as a delay. */
export function bullJobOptions(job: DispatchableJob, now = Date.now()): JobsOptions {
  const delay = job.run_at.getTime() - now;
  return {
    jobId: job.job_id,
    priority: bullPriority(job.priority),
    // BullMQ schedules at timestamp + delay: pinning the timestamp makes that exactly run_at, so jobs
    // due at the same moment become due together and run in priority order.
    ...(delay > 0 ? { delay, timestamp: now } : {}),
    // Removed when done, so the same id can be enqueued again after a retry through the API.
    removeOnComplete: true,
    removeOnFail: true,
  };
}

export type RedisRole = 'commands' | 'blocking';

/**
 * How long a command of the `commands` role may wait for its answer: the dispatcher's own bound, so
 * a partitioned Redis holds at most one batch of unanswered commands.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2000;

/**
 * An ioredis client for `url`. `commands`: fails fast while disconnected (a submit must not hang on
 * a Redis outage; the row is kept and the reconciler enqueues it later) and gives up on an answer
 * after REDIS_COMMAND_TIMEOUT_MS. `blocking`: what BullMQ's workers require (no per-request retry
 * limit, no command timeout: their commands block on purpose). Both reconnect by themselves,
 * backing off to 2 s, and probe an idle socket so a vanished peer is noticed.
 */
export function createRedis(url: string, role: RedisRole, name: string): Redis {
  const common: RedisOptions = {
    connectionName: name,
    connectTimeout: 2000,
    keepAlive: 10_000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  };
  const client =
    role === 'commands'
      ? new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS })
      : new Redis(url, { ...common, maxRetriesPerRequest: null, enableReadyCheck: true });
  // Reported through the commands that fail; an unhandled 'error' event would end the process.
  client.on('error', () => {});
  return client;
}

/** Resolves once `redis` is connected, or rejects after `timeoutMs` saying it cannot be reached. */
export async function redisReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  let onReady: () => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      redis.once('ready', onReady);
      timer = setTimeout(() => reject(new Error(`cannot reach Redis within ${timeoutMs} ms`)), timeoutMs);
    });
  } finally {
    clearTimeout(timer);
    redis.removeListener('ready', onReady);
  }
}

/** The queues of the given types on one connection, created on first use. */
export class QueueSet {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  get(type: string): Queue {
    let queue = this.queues.get(type);
    if (!queue) {
      queue = new Queue(queueNameFor(type), { connection: this.connection, prefix: this.prefix });
      queue.on('error', this.onError);
      this.queues.set(type, queue);
    }
    return queue;
  }

  /** The Redis key of a job's hash: present while BullMQ holds the job. */
  jobKey(type: string, jobId: string): string {
    return `${this.prefix}:${queueNameFor(type)}:${jobId}`;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}

/** BullMQ's backlog of one type, by state. */
export interface BrokerCounts {
  /** Ready to run: BullMQ's `wait` plus `prioritized` (every evalops job has a priority). */
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
}

/** Reads the backlog of one type's queue. */
export async function brokerCounts(queue: Queue): Promise<BrokerCounts> {
  const c = await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed');
  return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), delayed: c.delayed ?? 0, active: c.active ?? 0, failed: c.failed ?? 0 };
}

/** Job types that have a queue under `prefix` in this Redis (SCAN for their meta keys). */
export async function queuedTypesInRedis(redis: Redis, prefix: string): Promise<string[]> {
  const types = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:jobs.*:meta`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = typeOfQueue(key.slice(prefix.length + 1, -':meta'.length));
      if (type !== undefined) types.add(type);
    }
  } while (cursor !== '0');
  return [...types].sort();
}

/** For each job, whether BullMQ holds it (its hash exists), in one pipeline per 1,000. */
export async function heldByBroker(redis: Redis, queues: QueueSet, jobs: ReadonlyArray<{ job_id: string; type: string }>): Promise<boolean[]> {
  const held: boolean[] = [];
  for (let i = 0; i < jobs.length; i += 1000) {
    const chunk = jobs.slice(i, i + 1000);
    const pipeline = redis.pipeline();
    for (const job of chunk) pipeline.exists(queues.jobKey(job.type, job.job_id));
    const results = (await pipeline.exec()) ?? [];
    for (const [err, value] of results) {
      if (err) throw err;
      held.push(value === 1);
    }
  }
  return held;
}
