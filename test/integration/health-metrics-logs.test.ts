import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { waitFor } from '../helpers/processes.ts';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { COMMIT_SHA: 'abc123' }, {
    routes: async (app) => {
      app.get('/test/explode/:id', async () => {
        throw new Error('kaboom: an unexpected bug');
      });
    },
  });
});

afterAll(async () => {
  await server?.close(1000);
  await db?.cleanup();
});

describe('health, metrics and structured logs', () => {
  it('/health answers ok', async () => {
    const res = await server.api('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/health/detailed reports each component with latency and details', async () => {
    const res = await server.api('GET', '/health/detailed');
    expect(res.status).toBe(200);
    const h = res.body;
    expect(h.status).toBe('healthy');
    expect(h.commit).toBe('abc123');
    expect(h.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(h.components.database).toMatchObject({ status: 'healthy', details: { migrations: { pending: [] } } });
    expect(typeof h.components.database.latency_ms).toBe('number');
    expect(h.components.database.details.migrations.current).toBe(h.components.database.details.migrations.head);
    expect(h.components.redis.status).toBe('disabled');
    expect(h.components.background_tasks).toMatchObject({ status: 'healthy', details: { runner_mode: 'inprocess', queued: expect.any(Number), running: expect.any(Number), failed_last_hour: expect.any(Number) } });
    expect(h.components.background_tasks.details).toHaveProperty('oldest_queued_age_ms');
  });

  it('/health/detailed probes Redis when REDIS_URL is set: healthy, then degraded when it is unreachable', async () => {
    const withRedis = await startTestServer(await createTestDatabaseOwned(), { REDIS_URL: 'redis://127.0.0.1:6379' });
    try {
      const ok = await withRedis.api('GET', '/health/detailed');
      expect(ok.body.components.redis.status).toBe('healthy');
      expect(ok.body.components.redis.details.maxmemory_policy).toEqual(expect.any(String));
    } finally {
      await withRedis.close(500);
    }
    const deadRedis = await startTestServer(await createTestDatabaseOwned(), { REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const bad = await deadRedis.api('GET', '/health/detailed');
      expect(bad.status).toBe(200);
      expect(bad.body.status).toBe('degraded');
      expect(bad.body.components.redis.status).toBe('degraded');
      expect(bad.body.components.redis.message).toMatch(/cannot reach Redis/);
    } finally {
      await deadRedis.close(500);
    }
  });

  it('logs every request as one JSON line with method, path, route, status, duration and request id', async () => {
    const res = await server.api('GET', '/v1/jobs?limit=1', undefined, { 'x-request-id': 'trace-me-123' });
    expect(res.headers.get('x-request-id')).toBe('trace-me-123');
    const line = await waitFor('the access log line', async () => server.logs.find((l) => l.request_id === 'trace-me-123' && l.msg === 'request'));
    expect(line).toMatchObject({ method: 'GET', path: '/v1/jobs', route: '/v1/jobs', status: 200, level: 'info' });
    expect(typeof line.duration_ms).toBe('number');
    // Liveness probes are logged at debug, which LOG_LEVEL=info does not write.
    const probe = await server.api('GET', '/health', undefined, { 'x-request-id': 'probe-456' });
    expect(probe.headers.get('x-request-id')).toBe('probe-456');
    await server.api('GET', '/v1/jobs?limit=1', undefined, { 'x-request-id': 'after-probe' });
    await waitFor('a later access line', async () => server.logs.find((l) => l.request_id === 'after-probe'));
    expect(server.logs.filter((l) => l.request_id === 'probe-456')).toEqual([]);
  });

  it('a 5xx carries an error_id found in exactly one log line with path, method, status and stack', async () => {
    const res = await server.api('GET', '/test/explode/42?x=1');
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('INTERNAL');
    const errorId = res.body.error.error_id;
    expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(res.body)).not.toContain('kaboom');
    const lines = await waitFor('the error line', async () => {
      const found = server.logs.filter((l) => JSON.stringify(l).includes(errorId));
      return found.length ? found : undefined;
    });
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({ error_id: errorId, path: '/test/explode/42', method: 'GET', status: 500, level: 'error' });
    expect((line.err as { stack: string }).stack).toContain('kaboom: an unexpected bug');
  });

  it('/metrics exposes request, job and process metrics labelled by route pattern', async () => {
    expect((await server.api('GET', '/v1/no-such-route')).status).toBe(404);
    const job = await server.api('POST', '/v1/jobs', { type: 'noop' });
    await waitFor('the job to finish', async () => (await server.api('GET', `/v1/jobs/${job.body.job_id}`)).body.status === 'succeeded');
    await server.api('GET', `/v1/jobs/${job.body.job_id}`);
    const res = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status_code="200"\} \d+/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/health",status_code="200"\} [1-9]/);
    // Requests no route matched share one label, never their URL.
    expect(text).toMatch(/http_requests_total\{method="GET",route="unmatched",status_code="404"\} [1-9]/);
    expect(text).not.toContain('no-such-route');
    expect(text).not.toContain(job.body.job_id);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="[\d.]+",method="POST",route="\/v1\/jobs",status_code="202"\}/);
    expect(text).toMatch(/evalops_jobs_submitted_total\{type="noop"\} [1-9]/);
    expect(text).toMatch(/evalops_jobs_finished_total\{type="noop",status="succeeded"\} [1-9]/);
    expect(text).toMatch(/evalops_job_duration_seconds_count\{type="noop",status="succeeded"\} [1-9]/);
    expect(text).toMatch(/evalops_jobs_queue_depth\{status="queued"\} \d+/);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

// Extra servers in this file get databases of their own, cleaned up at the end.
const owned: TestDatabase[] = [];
async function createTestDatabaseOwned(): Promise<TestDatabase> {
  const d = await createTestDatabase();
  owned.push(d);
  return d;
}
afterAll(async () => {
  for (const d of owned) await d.cleanup();
});
