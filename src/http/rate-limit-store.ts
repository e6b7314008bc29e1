import type { Redis } from 'ioredis';
import type { Logger } from '../obs/logger.ts';

type IncrCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/** The store contract of @fastify/rate-limit (its `store` option). */
interface RateLimitStore {
  incr(key: string, callback: IncrCallback, timeWindow: number, max: number): void;
  child(routeOptions: unknown): RateLimitStore;
}

// Fixed window: the first hit of a window sets its expiry; PTTL tells the caller when it ends.
const INCR_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}`;

/** Fixed windows in this process's memory, bounded in size (oldest windows dropped first). */
class MemoryWindows {
  #windows = new Map<string, { count: number; resetAt: number }>();
  constructor(private readonly maxKeys: number) {}

  incr(key: string, timeWindow: number): { current: number; ttl: number } {
    const now = Date.now();
    let w = this.#windows.get(key);
    if (!w || w.resetAt <= now) {
      if (w) this.#windows.delete(key);
      w = { count: 0, resetAt: now + timeWindow };
      if (this.#windows.size >= this.maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
      this.#windows.set(key, w);
    }
    w.count += 1;
    return { current: w.count, ttl: w.resetAt - now };
  }
}

/**
 * Counts in Redis, so a limit holds across every API process. When Redis does not answer (down,
 * or slower than its command timeout), counting falls back to this process's memory rather than
 * letting everything through or refusing everything: the limit then holds per process until Redis
 * is back. One warning per outage.
 */
export function redisRateLimitStore(redis: Redis, namespace: string, logger: Logger): new () => RateLimitStore {
  redis.defineCommand('evalopsRateLimit', { numberOfKeys: 1, lua: INCR_SCRIPT });
  const memory = new MemoryWindows(50_000);
  let degraded = false;
  const fallback = (key: string, timeWindow: number, cb: IncrCallback, err: Error) => {
    if (!degraded) {
      degraded = true;
      logger.warn({ err: err.message }, 'rate limiting: Redis unavailable, counting in this process until it is back');
    }
    cb(null, memory.incr(key, timeWindow));
  };

  class RedisFallbackStore implements RateLimitStore {
    incr(key: string, cb: IncrCallback, timeWindow: number): void {
      if (redis.status !== 'ready') return fallback(key, timeWindow, cb, new Error(`Redis connection is ${redis.status}`));
      (redis as unknown as { evalopsRateLimit(key: string, window: number): Promise<[number, number]> })
        .evalopsRateLimit(namespace + key, timeWindow)
        .then(([current, ttl]) => {
          if (degraded) {
            degraded = false;
            logger.info('rate limiting: counting in Redis again');
          }
          cb(null, { current, ttl });
        })
        .catch((err: Error) => fallback(key, timeWindow, cb, err));
    }

    child(): RateLimitStore {
      return this;
    }
  }
  return RedisFallbackStore;
}
