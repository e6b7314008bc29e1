import { Redis } from 'ioredis';
import { withTimeout } from './database.ts';

/** A Redis connection used only to probe health: never queues commands while disconnected. */
export interface RedisProbe {
  ping(timeoutMs: number): Promise<{ latencyMs: number; maxmemoryPolicy: string | null }>;
  close(): Promise<void>;
}

/**
 * A probe of the Redis at `url`. Each command gives up after `commandTimeoutMs`: the caller's own
 * bound stops the wait, this stops unanswered PINGs from piling up on a partitioned socket.
 */
export function createRedisProbe(url: string, commandTimeoutMs = 2000): RedisProbe {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: commandTimeoutMs,
    keepAlive: 10_000,
    // Keep trying in the background so health recovers by itself once Redis is back.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  client.on('error', () => {
    /* reported through ping() */
  });
  return {
    async ping(timeoutMs) {
      const started = performance.now();
      const run = (async () => {
        if (client.status === 'wait' || client.status === 'end') await client.connect();
        await client.ping();
        const policy = (await client.config('GET', 'maxmemory-policy').catch(() => null)) as string[] | null;
        return { latencyMs: performance.now() - started, maxmemoryPolicy: policy?.[1] ?? null };
      })();
      return withTimeout(run, timeoutMs, 'Redis');
    },
    async close() {
      client.disconnect();
    },
  };
}
