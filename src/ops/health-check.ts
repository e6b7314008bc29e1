import type { Config } from '../config/config.ts';
import { EVALOPS_VERSION } from '../config/version.ts';
import { type DatabaseHandle, withTimeout } from '../db/database.ts';
import { migrationStatus } from '../db/migrator.ts';
import type { RedisProbe } from '../db/redis-probe.ts';
import type { JobRunner, RunnerInspection } from '../jobs/job-runner.ts';
import { backlogSummary } from '../jobs/job-store.ts';

export type ComponentStatus = 'healthy' | 'degraded' | 'unhealthy' | 'disabled';

export interface ComponentHealth {
  status: ComponentStatus;
  latency_ms: number | null;
  message?: string;
  details: Record<string, unknown>;
}

export interface DetailedHealth {
  status: Exclude<ComponentStatus, 'disabled'>;
  version: string;
  commit: string | null;
  uptime_s: number;
  checked_at: string;
  components: { database: ComponentHealth; redis: ComponentHealth; background_tasks: ComponentHealth };
}

export interface HealthDeps {
  config: Config;
  database: DatabaseHandle;
  redis: RedisProbe | undefined;
  runner: JobRunner;
  startedAt: number;
}

const RANK: Record<ComponentStatus, number> = { disabled: 0, healthy: 0, degraded: 1, unhealthy: 2 };

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: Math.round((performance.now() - started) * 100) / 100 };
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function databaseHealth({ database, config }: HealthDeps): Promise<ComponentHealth> {
  const t = config.health.probeTimeoutMs;
  const base = { kind: database.kind, location: database.location };
  let latency: number;
  try {
    latency = (await timed(() => database.ping(t))).ms;
  } catch (err) {
    return { status: 'unhealthy', latency_ms: null, message: `cannot reach the database: ${message(err)}`, details: base };
  }
  try {
    const m = await withTimeout(migrationStatus(database.db), t, 'the migration check');
    const details = { ...base, migrations: { current: m.current, head: m.head, pending: m.pending, unknown: m.unknown } };
    if (m.pending.length) return { status: 'unhealthy', latency_ms: latency, message: `migrations pending: ${m.pending.join(', ')}; run \`evalops migrate up\``, details };
    if (m.unknown.length) return { status: 'degraded', latency_ms: latency, message: `the database has migrations this version does not know (${m.unknown.join(', ')}): is an older version running?`, details };
    return { status: 'healthy', latency_ms: latency, details };
  } catch (err) {
    return { status: 'unhealthy', latency_ms: latency, message: `cannot read migrations: ${message(err)}`, details: base };
  }
}

async function redisHealth({ redis, config }: HealthDeps): Promise<ComponentHealth> {
  if (!redis) return { status: 'disabled', latency_ms: null, message: 'REDIS_URL is not set', details: {} };
  // In inprocess mode nothing needs Redis, so its failure only degrades the service.
  const failing: ComponentStatus = config.runnerMode === 'inprocess' ? 'degraded' : 'unhealthy';
  try {
    const { latencyMs, maxmemoryPolicy } = await redis.ping(config.health.probeTimeoutMs);
    const healthy: ComponentHealth = { status: 'healthy', latency_ms: Math.round(latencyMs * 100) / 100, details: { maxmemory_policy: maxmemoryPolicy, used_by: config.runnerMode === 'inprocess' ? 'nothing in inprocess mode' : 'job dispatch' } };
    // BullMQ's keys must never be evicted: an evicted job is a delivery lost until the reconciler notices.
    if (config.runnerMode === 'queue' && maxmemoryPolicy !== 'noeviction') {
      return { ...healthy, status: 'degraded', message: `maxmemory-policy is ${maxmemoryPolicy ?? 'unreadable (CONFIG GET refused)'}; queue mode needs noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)` };
    }
    return healthy;
  } catch (err) {
    return { status: failing, latency_ms: null, message: `cannot reach Redis: ${message(err)}`, details: {} };
  }
}

async function backgroundTasksHealth({ runner, database, config }: HealthDeps): Promise<ComponentHealth> {
  const r = runner.status();
  const details: Record<string, unknown> = { runner_mode: r.mode, worker_id: r.workerId, concurrency: r.concurrency, active: r.active };
  let latency: number | null = null;
  try {
    const { value: b, ms } = await timed(() => withTimeout(backlogSummary(database.db), config.health.probeTimeoutMs, 'the jobs table'));
    latency = ms;
    Object.assign(details, { queued: b.queued, running: b.running, oldest_queued_age_ms: b.oldestQueuedAgeMs, failed_last_hour: b.failedLastHour });
    if (!r.running) return { status: 'unhealthy', latency_ms: latency, message: 'the job runner is stopped', details };
    // Queue mode: the jobs run in worker processes; count the live ones and read the broker's backlog.
    if (runner.inspect) {
      let q: RunnerInspection;
      try {
        q = await withTimeout(runner.inspect(), config.health.probeTimeoutMs, 'the worker registry');
      } catch (err) {
        return { status: 'unhealthy', latency_ms: latency, message: `cannot count workers or read the queue backlog: ${message(err)}`, details };
      }
      Object.assign(details, q.details);
      if (q.liveWorkers === 0 && b.oldestQueuedAgeMs !== null) {
        return { status: 'unhealthy', latency_ms: latency, message: `no live worker while ${b.queued} job(s) are queued; start \`evalops worker\``, details };
      }
      if (q.liveWorkers === 0) return { status: 'degraded', latency_ms: latency, message: 'no live worker: jobs submitted now will wait; start `evalops worker`', details };
    }
    if (r.lastError) return { status: 'degraded', latency_ms: latency, message: `the job runner last failed with: ${r.lastError}`, details };
    if (b.oldestQueuedAgeMs !== null && b.oldestQueuedAgeMs > config.health.queueAgeDegradedMs) {
      return { status: 'degraded', latency_ms: latency, message: `the oldest due job has waited ${Math.round(b.oldestQueuedAgeMs / 1000)} s (threshold ${config.health.queueAgeDegradedMs / 1000} s)`, details };
    }
    return { status: 'healthy', latency_ms: latency, details };
  } catch (err) {
    return { status: 'unhealthy', latency_ms: latency, message: `cannot read the jobs table: ${message(err)}`, details };
  }
}

/** Probes every component in parallel, each bounded by HEALTH_PROBE_TIMEOUT_MS. */
export async function detailedHealth(deps: HealthDeps): Promise<DetailedHealth> {
  const [database, redis, background_tasks] = await Promise.all([databaseHealth(deps), redisHealth(deps), backgroundTasksHealth(deps)]);
  const worst = [database, redis, background_tasks].reduce((a, c) => (RANK[c.status] > RANK[a] ? c.status : a), 'healthy' as ComponentStatus);
  return {
    status: worst === 'disabled' ? 'healthy' : worst,
    version: EVALOPS_VERSION,
    commit: deps.config.commitSha ?? null,
    uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
    checked_at: new Date().toISOString(),
    components: { database, redis, background_tasks },
  };
}
