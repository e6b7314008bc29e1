import { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../obs/logger.ts';
import { AccessAdmin } from '../ops/access-admin.ts';
import { RuntimeLimits } from '../ops/runtime-limits.ts';
import { ApiKeyCache } from './api-key-cache.ts';
import { authMode, isLoopbackHost } from './auth.ts';

/** What the API process holds for access control: built once by startServer, closed at shutdown. */
export interface AccessControl {
  keys: ApiKeyCache;
  limits: RuntimeLimits;
  admin: AccessAdmin;
  /** Rate-limit counters live here when REDIS_URL is set. */
  rateLimitRedis: Redis | undefined;
  /** Why the server must not start (non-loopback HOST without a key), or undefined. */
  refusal: string | undefined;
  close(): Promise<void>;
}

/**
 * Loads keys and limits, subscribes to their change notifications, and decides whether the server
 * may start as configured: beyond loopback it needs an API key, unless AUTH_DISABLED=true says
 * otherwise on purpose. Logs one line saying how requests will be treated.
 */
export async function startAccessControl(options: { config: Config; database: DatabaseHandle; logger: Logger; jobTypes: () => readonly string[] }): Promise<AccessControl> {
  const { config, database, logger } = options;
  const limits = await RuntimeLimits.start({ database, config, logger });
  let keys: ApiKeyCache;
  try {
    keys = await ApiKeyCache.start({ database, ttlMs: config.access.authCacheTtlMs, logger });
  } catch (err) {
    await limits.close();
    throw err;
  }
  const rateLimitRedis = config.redisUrl
    ? new Redis(config.redisUrl, {
        // Never queue a request's rate-limit check behind a reconnect: fail fast, count locally instead.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: 2000,
        commandTimeout: 250,
        retryStrategy: (times) => Math.min(times * 200, 2000),
      })
    : undefined;
  rateLimitRedis?.on('error', () => {
    /* reported by the rate-limit store (once per outage) and by /health/detailed */
  });

  const active = keys.activeKeys();
  const mode = authMode(config, active);
  let refusal: string | undefined;
  if (mode === 'keys' && active === 0 && !isLoopbackHost(config.host)) {
    refusal =
      `HOST=${config.host} is reachable beyond this machine and no API key exists, so nobody could use the API; ` +
      'create one first with `npx evalops apikey create --name NAME --scopes read,jobs:write,evals:write,admin` (same DATABASE_URL/DATA_DIR), ' +
      'or set AUTH_DISABLED=true to serve without authentication on purpose';
  } else if (mode === 'open') {
    logger.warn(
      { auth: 'open', host: config.host },
      'no API key exists and HOST is loopback: the API runs open to this machine (no authentication, no rate limits); `evalops apikey create` turns authentication on',
    );
  } else if (mode === 'disabled') {
    const line = `AUTH_DISABLED=true: the API serves every caller without authentication on ${config.host} (rate limits per IP still apply)`;
    if (isLoopbackHost(config.host)) logger.info({ auth: 'disabled', host: config.host }, line);
    else logger.warn({ auth: 'disabled', host: config.host }, line);
  } else {
    logger.info({ auth: 'keys', active_keys: active, metrics_token: Boolean(config.access.metricsToken), rate_limit_store: rateLimitRedis ? 'redis' : 'memory' }, 'API keys required');
  }

  return {
    keys,
    limits,
    admin: new AccessAdmin(database.db, config, logger, options.jobTypes, (what) => (what === 'keys' ? keys.invalidate() : limits.reload())),
    rateLimitRedis,
    refusal,
    async close() {
      rateLimitRedis?.disconnect();
      await keys.close();
      await limits.close();
    },
  };
}
