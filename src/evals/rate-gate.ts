import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { sleep } from './http-retry.ts';
import type { ProviderConfig } from './providers/provider-factory.ts';
import { redactUrl } from './providers/provider.ts';
import type { RequestGate } from './providers/retrying-post.ts';

/**
 * The shared request-rate limit of a provider endpoint (`requests_per_minute` in its config): every
 * request of every run waits at the gate. With REDIS_URL set the limit lives in Redis and holds
 * across all API processes and queue-mode workers; without it, across all runs of this process.
 *
 * GCRA (the generic cell rate algorithm, as in ATM networks and redis-cell): one timestamp per
 * endpoint, the theoretical arrival time of the next request; a request may go when that time is
 * at most one second's worth of requests ahead of now. Redis' own clock decides, so workers with
 * skewed clocks still share one schedule.
 */

/** Milliseconds to wait before a request may go (0: go now), updating the schedule when it goes. */
type Admit = (key: string, intervalMs: number, toleranceMs: number) => Promise<number>;

const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if allow_at > now then return math.ceil(allow_at - now) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
`;

/** The same algorithm in this process's memory. */
function localAdmit(): Admit {
  const schedule = new Map<string, number>();
  return async (key, intervalMs, toleranceMs) => {
    const now = Date.now();
    const tat = Math.max(schedule.get(key) ?? 0, now);
    const allowAt = tat - toleranceMs;
    if (allowAt > now) return Math.ceil(allowAt - now);
    schedule.set(key, tat + intervalMs);
    return 0;
  };
}

function redisAdmit(redis: Redis): Admit {
  return async (key, intervalMs, toleranceMs) => Number(await redis.eval(GCRA_LUA, 1, key, String(intervalMs), String(toleranceMs)));
}

/** The endpoint a limit applies to: provider type and URL, without credentials. */
export function rateLimitKey(prefix: string, config: ProviderConfig): string {
  const endpoint = config.type === 'openai' ? config.base_url : config.type === 'http' ? config.url : 'echo';
  const identity = `${config.type} ${redactUrl(endpoint).replace(/\/+$/, '')}`;
  return `${prefix}:ratelimit:${createHash('sha256').update(identity).digest('hex').slice(0, 32)}`;
}

/** A gate admitting `requestsPerMinute`, with a burst of one second's worth. */
export function rateGate(admit: Admit, key: string, requestsPerMinute: number): RequestGate {
  const intervalMs = 60_000 / requestsPerMinute;
  const toleranceMs = Math.max(0, 1000 - intervalMs);
  return {
    async wait(signal) {
      for (;;) {
        const waitMs = await admit(key, intervalMs, toleranceMs);
        if (waitMs <= 0) return;
        await sleep(waitMs, signal);
      }
    },
  };
}

/** Gates for the providers of one process: in Redis when a URL is given, else in memory. */
export class RateGates {
  private readonly local = localAdmit();
  private redis: Redis | undefined;

  constructor(private readonly options: { redisUrl: string | undefined; prefix: string }) {}

  /** The gate of a provider config with `requests_per_minute`, else undefined (no limit). */
  gateFor(config: ProviderConfig): RequestGate | undefined {
    const rpm = 'requests_per_minute' in config ? config.requests_per_minute : undefined;
    if (rpm === undefined) return undefined;
    return rateGate(this.admit(), rateLimitKey(this.options.prefix, config), rpm);
  }

  private admit(): Admit {
    if (!this.options.redisUrl) return this.local;
    // Connected on first use: a process that never limits a provider never opens it.
    this.redis ??= new Redis(this.options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3, connectionName: `evalops-rate-gate:${process.pid}` });
    return redisAdmit(this.redis);
  }

  async close(): Promise<void> {
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }
}
