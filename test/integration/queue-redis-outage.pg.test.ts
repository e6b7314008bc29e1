import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, waitFor } from '../helpers/processes.ts';
import { spawnWorker, startRedisServer, type TestRedisServer, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Redis is only the dispatch mechanism: with a redis-server of this file's own (no persistence), stopped
 * while jobs are submitted and started again empty, every accepted job still runs.
 */

let redis: TestRedisServer;
let db: TestDatabase;
let server: TestServer;
let worker: WorkerProcess | undefined;
let sqlClient: pg.Client;
const prefix = 'outage';

beforeAll(async () => {
  redis = await startRedisServer();
  db = await createTestDatabase({ backend: 'postgres' });
  const env = { JOB_RUNNER_MODE: 'queue', REDIS_URL: redis.url, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500', JOB_LEASE_MS: '3000', HEALTH_PROBE_TIMEOUT_MS: '500' };
  server = await startTestServer(db, env);
  worker = await spawnWorker({ ...db.env, ...env }, ['--name', 'survivor', '--concurrency', '10']);
  sqlClient = new pg.Client({ connectionString: db.databaseUrl });
  await sqlClient.connect();
});

afterAll(async () => {
  await worker?.stop('SIGKILL', 5000);
  await sqlClient?.end();
  await server?.close(2000);
  await redis?.kill();
  await db?.cleanup();
});

async function submit(body: unknown): Promise<string> {
  const started = Date.now();
  const res = await server.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  // Accepted promptly even with Redis gone: the row is the record.
  expect(Date.now() - started).toBeLessThan(5000);
  return res.body.job_id;
}

const counts = async (ids: string[]) =>
  (
    await sqlClient.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM jobs WHERE job_id = ANY($1::uuid[]) GROUP BY status`, [ids])
  ).rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: r.n }), {});

describe('Redis stopped while jobs are submitted, then restarted empty', () => {
  it('loses nothing: every job accepted before, during and after the outage runs', async () => {
    const before: string[] = [];
    for (let i = 0; i < 40; i++) before.push(await submit(i % 4 === 0 ? { type: 'sleep', payload: { ms: 300 } } : { type: 'noop' }));
    // Some jobs are still waiting or running in BullMQ when Redis dies.
    for (let i = 0; i < 10; i++) before.push(await submit({ type: 'sleep', payload: { ms: 1500 } }));
    await waitFor('a few jobs done before the outage', async () => ((await counts(before)).succeeded ?? 0) >= 5, 20_000);

    await redis.kill();
    const during: string[] = [];
    for (let i = 0; i < 30; i++) during.push(await submit({ type: 'noop', payload: { during: i } }));
    const health = await server.api('GET', '/health/detailed');
    expect(health.status).toBe(503);
    expect(health.body.components.redis.status).toBe('unhealthy');

    await redis.restart();
    const after: string[] = [];
    for (let i = 0; i < 10; i++) after.push(await submit({ type: 'noop', payload: { after: i } }));

    const all = [...before, ...during, ...after];
    await waitFor('every job to succeed after Redis came back', async () => ((await counts(all)).succeeded ?? 0) === all.length, 90_000, 250);
    expect(await counts(all)).toEqual({ succeeded: all.length });

    // The worker reconnected by itself and answers again.
    const ping = await runCli(['workers', 'ping', '--json'], { REDIS_URL: redis.url, QUEUE_PREFIX: prefix });
    expect(ping.code, ping.stderr).toBe(0);
    expect(JSON.parse(ping.stdout).answered.map((w: { name: string }) => w.name)).toEqual(['survivor']);
    expect(server.logs.some((l) => l.msg === 'reconciler enqueued queued jobs BullMQ did not hold')).toBe(true);
  });
});

describe('/health/detailed redis in queue mode', () => {
  it('is degraded unless maxmemory-policy is noeviction, and says how to fix it', async () => {
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const degraded = await server.api('GET', '/health/detailed');
      expect(degraded.body.components.redis).toMatchObject({ status: 'degraded', details: { maxmemory_policy: 'allkeys-lru' } });
      expect(degraded.body.components.redis.message).toContain('noeviction');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      const healthy = await server.api('GET', '/health/detailed');
      expect(healthy.body.components.redis).toMatchObject({ status: 'healthy', details: { maxmemory_policy: 'noeviction' } });
      expect(typeof healthy.body.components.redis.latency_ms).toBe('number');
    } finally {
      admin.disconnect();
    }
  });
});
