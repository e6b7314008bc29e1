import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../obs/logger.ts';
import { registryKeys, WORKER_HEARTBEAT_MS, WORKER_TTL_MS } from './bullmq-queues.ts';

/**
 * The worker registry in Redis: each worker renews a self-description that expires after three
 * missed heartbeats (so a SIGKILLed worker drops out by itself, whatever the clocks say), and answers
 * `evalops workers ping` over pub/sub. Liveness is Redis key expiry, never a comparison of clocks.
 */

/** What a worker says about itself. */
export interface WorkerInfo {
  worker_id: string;
  name: string;
  host: string;
  pid: number;
  concurrency: number;
  /** Jobs in hand right now. */
  active: number;
  types: string[];
  started_at: string;
  heartbeat_at: string;
  /** Where Prometheus scrapes it; null when metrics are off. */
  metrics_url: string | null;
  version: string;
}

/** A worker's side: heartbeat and ping answers, until `stop`. */
export class WorkerRegistration {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lastError: string | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
    private readonly describe: () => Omit<WorkerInfo, 'heartbeat_at'>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const keys = registryKeys(this.prefix);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== keys.ping) return;
      void this.answer(message);
    });
    // Not awaited: it completes once Redis answers (ioredis re-subscribes by itself after a reconnect).
    this.subscriber.subscribe(keys.ping).catch((err) => this.note(err));
    await this.beat();
    this.timer = setInterval(() => void this.beat(), WORKER_HEARTBEAT_MS);
    this.timer.unref();
  }

  private info(): WorkerInfo {
    return { ...this.describe(), heartbeat_at: new Date().toISOString() };
  }

  /** Renews the registry entry (skipped while the previous renewal is still in flight). */
  beat(): Promise<void> {
    this.beating ??= (async () => {
      const keys = registryKeys(this.prefix);
      const info = this.info();
      try {
        await this.redis.multi().set(keys.info(info.worker_id), JSON.stringify(info), 'PX', WORKER_TTL_MS).zadd(keys.index, Date.now(), info.worker_id).exec();
        if (this.lastError) this.log.info('worker heartbeat reaches Redis again');
        this.lastError = null;
      } catch (err) {
        this.note(err);
      } finally {
        this.beating = undefined;
      }
    })();
    return this.beating;
  }

  private async answer(message: string): Promise<void> {
    let reply: string | undefined;
    try {
      reply = (JSON.parse(message) as { reply?: string }).reply;
    } catch {
      return;
    }
    if (!reply || !reply.startsWith(registryKeys(this.prefix).reply(''))) return;
    try {
      await this.redis.multi().rpush(reply, JSON.stringify(this.info())).pexpire(reply, 30_000).exec();
    } catch (err) {
      this.note(err);
    }
  }

  private note(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError !== message) this.log.warn({ err: message }, 'worker heartbeat cannot reach Redis; retrying');
    this.lastError = message;
  }

  /** Leaves the registry at once (a clean stop is not a crash). */
  async stop(workerId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    const keys = registryKeys(this.prefix);
    await this.subscriber.unsubscribe(keys.ping).catch(() => {});
    await this.redis.multi().del(keys.info(workerId)).zrem(keys.index, workerId).exec().catch(() => {});
  }
}

/** Workers whose registry entry has not expired; prunes the index of those that have. */
export async function listLiveWorkers(redis: Redis, prefix: string): Promise<WorkerInfo[]> {
  const keys = registryKeys(prefix);
  const ids = await redis.zrange(keys.index, 0, -1);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => keys.info(id)));
  const live: WorkerInfo[] = [];
  const dead: string[] = [];
  values.forEach((value, i) => {
    if (value === null) dead.push(ids[i]!);
    else live.push(JSON.parse(value) as WorkerInfo);
  });
  // Only entries gone for a while: a worker between its first SET and ZADD must not be pruned.
  if (dead.length) await redis.zremrangebyscore(keys.index, '-inf', Date.now() - 2 * WORKER_TTL_MS).catch(() => {});
  return live.sort((a, b) => a.name.localeCompare(b.name) || a.worker_id.localeCompare(b.worker_id));
}

/** A worker's answer to a ping, with the round trip. */
export interface PingAnswer {
  info: WorkerInfo;
  rtt_ms: number;
}

/**
 * Asks every subscribed worker to answer and collects the answers for up to `timeoutMs` (fewer when
 * all that received the ping have answered). `blocking` must be a connection of its own (BLPOP).
 */
export async function pingWorkers(redis: Redis, blocking: Redis, prefix: string, timeoutMs: number): Promise<{ asked: number; answers: PingAnswer[] }> {
  const keys = registryKeys(prefix);
  const reply = keys.reply(randomBytes(8).toString('hex'));
  const started = performance.now();
  const asked = await redis.publish(keys.ping, JSON.stringify({ reply }));
  const answers: PingAnswer[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (answers.length < asked) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const popped = await blocking.blpop(reply, Math.max(0.01, left / 1000));
      if (!popped) break;
      answers.push({ info: JSON.parse(popped[1]) as WorkerInfo, rtt_ms: Math.round((performance.now() - started) * 10) / 10 });
    }
  } finally {
    await redis.del(reply).catch(() => {});
  }
  return { asked, answers };
}
