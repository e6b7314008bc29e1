import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { casesJsonl, textPrompt } from '../helpers/eval-helpers.ts';
import { runCli, waitFor } from '../helpers/processes.ts';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Traffic and input limits: per-key read and write budgets with 429 and Retry-After, per IP when
 * anonymous, counted in Redis across processes; runtime limits changed without a restart; body,
 * per-job-type payload and evaluation limits refusing with the limit and the value, storing nothing;
 * load shedding that leaves health answering; security headers and CORS.
 */

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const owned: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const o of owned.reverse()) await o.close();
});

async function serverWith(env: Record<string, string> = {}, extensions: Parameters<typeof startTestServer>[2] = {}): Promise<{ db: TestDatabase; server: TestServer }> {
  const db = await createTestDatabase();
  const server = await startTestServer(db, env, extensions);
  owned.push({ close: () => db.cleanup() }, { close: () => server.close(500) });
  return { db, server };
}

async function counts(server: TestServer): Promise<{ jobs: number; runs: number; prompts: number }> {
  const row = await server.database.db
    .selectNoFrom((eb) => [
      eb.selectFrom('jobs').select((e) => e.fn.countAll<number>().as('n')).as('jobs'),
      eb.selectFrom('evaluation_runs').select((e) => e.fn.countAll<number>().as('n')).as('runs'),
      eb.selectFrom('prompts').select((e) => e.fn.countAll<number>().as('n')).as('prompts'),
    ])
    .executeTakeFirstOrThrow();
  return { jobs: Number(row.jobs), runs: Number(row.runs), prompts: Number(row.prompts) };
}

describe('rate limits per key', () => {
  let server: TestServer;
  let db: TestDatabase;
  let admin: string;
  let other: string;

  beforeAll(async () => {
    ({ server, db } = await serverWith());
    admin = (await server.api('POST', '/v1/admin/api-keys', { name: 'admin', scopes: ['admin'] })).body.key;
    other = (await server.api('POST', '/v1/admin/api-keys', { name: 'other', scopes: ['read', 'jobs:write'] }, bearer(admin))).body.key;
  });

  it('separate read and write budgets per key, 429 with Retry-After, set and reset at runtime', async () => {
    const user = (await server.api('POST', '/v1/admin/api-keys', { name: 'limited', scopes: ['read', 'jobs:write'] }, bearer(admin))).body.key;
    const set = await server.api('PUT', '/v1/admin/limits', { 'rate.read_per_minute': 5, 'rate.write_per_minute': 3 }, bearer(admin));
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    // The admin key has spent part of its budgets already; `user` starts fresh.
    const reads: number[] = [];
    for (let i = 0; i < 6; i++) reads.push((await server.api('GET', '/v1/jobs?limit=1', undefined, bearer(user))).status);
    expect(reads).toEqual([200, 200, 200, 200, 200, 429]);
    const refused = await server.api('GET', '/v1/jobs?limit=1', undefined, bearer(user));
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('x-ratelimit-limit')).toBe('5');
    expect(refused.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 5 } });
    expect(refused.body.error.message).toMatch(/more than 5 read requests per minute for key "limited" \(rate\.read_per_minute\); retry after \d+ s/);

    // Writes have their own budget, and another key its own.
    const writes: number[] = [];
    for (let i = 0; i < 4; i++) writes.push((await server.api('POST', '/v1/jobs', { type: 'noop' }, bearer(user))).status);
    expect(writes).toEqual([202, 202, 202, 429]);
    expect((await server.api('GET', '/v1/jobs?limit=1', undefined, bearer(other))).status).toBe(200);

    // Health is never rate limited, nor is key and limit management by an admin key.
    for (let i = 0; i < 10; i++) expect((await server.api('GET', '/health')).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await server.api('GET', '/v1/admin/limits', undefined, bearer(admin))).status).toBe(200);

    // Back to the default (3000/min): the same key reads again at once.
    expect((await server.api('DELETE', '/v1/admin/limits/rate.read_per_minute', undefined, bearer(admin))).status).toBe(200);
    expect((await server.api('DELETE', '/v1/admin/limits/rate.write_per_minute', undefined, bearer(admin))).status).toBe(200);
    expect((await server.api('GET', '/v1/jobs?limit=1', undefined, bearer(user))).status).toBe(200);
  });

  it('`evalops limits set/show/reset` from the CLI, picked up by the running server', async () => {
    const set = await runCli(['limits', 'set', 'rate.write_per_minute=2', 'job.payload_bytes.sleep=64'], db.env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/rate\.write_per_minute\s+\|\s+2 \| runtime \|\s+600 \| RATE_LIMIT_WRITE_PER_MINUTE/);
    expect(set.stdout).toMatch(/job\.payload_bytes\.sleep\s+\|\s+64 \| runtime/);
    const shown = JSON.parse((await runCli(['limits', 'show', '--json'], db.env)).stdout) as Array<{ name: string; value: number; source: string }>;
    expect(shown.find((l) => l.name === 'rate.write_per_minute')).toMatchObject({ value: 2, source: 'runtime' });
    expect(shown.find((l) => l.name === 'rate.read_per_minute')).toMatchObject({ value: 3000, source: 'default' });

    const key = (await server.api('POST', '/v1/admin/api-keys', { name: 'cli-limited', scopes: ['jobs:write'] }, bearer(admin))).body.key;
    const big = await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 1, pad: 'x'.repeat(100) } }, bearer(key));
    expect(big.status).toBe(413);
    expect(big.body.error.message).toMatch(/payload: \d+ bytes is over the limit of 64 bytes for job type sleep \(job\.payload_bytes\.sleep\)/);
    expect((await server.api('POST', '/v1/jobs', { type: 'noop' }, bearer(key))).status).toBe(202);
    expect((await server.api('POST', '/v1/jobs', { type: 'noop' }, bearer(key))).status).toBe(429);

    const bad = await runCli(['limits', 'set', 'rate.write_per_minute=-1'], db.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/rate\.write_per_minute: "-1" is not a whole number from 0 to 1000000000 \(0 = unlimited\)/);
    const unknown = await runCli(['limits', 'set', 'nonsense=1'], db.env);
    expect(unknown.stderr).toMatch(/"nonsense" is not a limit; the limits are rate\.read_per_minute/);

    const reset = await runCli(['limits', 'reset', 'rate.write_per_minute', 'job.payload_bytes.sleep'], db.env);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).not.toContain('job.payload_bytes.sleep');
    expect((await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 1, pad: 'x'.repeat(100) } }, bearer(key))).status).toBe(202);
    const audit = TEST_DB === 'pglite' ? server.logs.filter((l) => l.audit === 'limits.changed' || l.audit === 'limits.reset') : [];
    if (TEST_DB === 'pglite') expect(audit.map((l) => l.actor)).toEqual(expect.arrayContaining([expect.stringMatching(/^cli:/)]));
  });
});

describe('rate limits per IP when anonymous, in Redis across processes', () => {
  it('AUTH_DISABLED=true: anonymous callers are limited per address', async () => {
    const { server } = await serverWith({ AUTH_DISABLED: 'true', RATE_LIMIT_READ_PER_MINUTE: '3' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await server.api('GET', '/v1/jobs?limit=1')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await server.api('GET', '/v1/jobs?limit=1');
    expect(refused.body.error.message).toMatch(/for address 127\.0\.0\.1 \(rate\.read_per_minute\)/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('two API processes sharing REDIS_URL share one budget; with Redis down each still enforces it', async () => {
    const env = { AUTH_DISABLED: 'true', RATE_LIMIT_READ_PER_MINUTE: '4', REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}` };
    const a = (await serverWith(env)).server;
    const b = (await serverWith(env)).server;
    await waitFor('the rate-limit Redis connections', async () => (await a.api('GET', '/health/detailed')).body.components.redis.status === 'healthy');
    const seen = [
      (await a.api('GET', '/v1/jobs?limit=1')).status,
      (await b.api('GET', '/v1/jobs?limit=1')).status,
      (await a.api('GET', '/v1/jobs?limit=1')).status,
      (await b.api('GET', '/v1/jobs?limit=1')).status,
      (await a.api('GET', '/v1/jobs?limit=1')).status,
      (await b.api('GET', '/v1/jobs?limit=1')).status,
    ];
    expect(seen).toEqual([200, 200, 200, 200, 429, 429]);

    const dead = (await serverWith({ ...env, REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_READ_PER_MINUTE: '2' })).server;
    const local = [(await dead.api('GET', '/v1/jobs?limit=1')).status, (await dead.api('GET', '/v1/jobs?limit=1')).status, (await dead.api('GET', '/v1/jobs?limit=1')).status];
    expect(local).toEqual([200, 200, 429]);
    expect(dead.logs.some((l) => String(l.msg).includes('Redis unavailable, counting in this process'))).toBe(true);
  });
});

describe('input limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    ({ server } = await serverWith({ BODY_LIMIT_BYTES: '100000', EVAL_MAX_CASES_PER_RUN: '3', EVAL_MAX_CONCURRENT_RUNS: '1' }));
  });

  it('body size: 413 naming the limit and the size, from BODY_LIMIT_BYTES or a lower runtime value, chunked or not; nothing stored', async () => {
    const before = await counts(server);
    const over = await server.api('POST', '/v1/jobs', JSON.stringify({ type: 'noop', payload: { pad: 'x'.repeat(100_100) } }));
    expect(over.status).toBe(413);
    expect(over.body.error.message).toMatch(/^body: 1001\d\d bytes is over the limit of 100000 bytes \(BODY_LIMIT_BYTES\)$/);

    expect((await server.api('PUT', '/v1/admin/limits', { 'body.max_bytes': 2048 })).status).toBe(200);
    const body = JSON.stringify({ type: 'noop', payload: { pad: 'x'.repeat(3000) } });
    const lowered = await server.api('POST', '/v1/jobs', body);
    expect(lowered.status).toBe(413);
    expect(lowered.body.error.message).toBe(`body: ${Buffer.byteLength(body)} bytes is over the limit of 2048 bytes (body.max_bytes)`);
    expect(lowered.body.error.details).toEqual({ limit: 2048, value: Buffer.byteLength(body) });

    // Without a Content-Length the body is counted as it arrives.
    const chunked = await fetch(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(body.slice(0, 1500)));
          controller.enqueue(new TextEncoder().encode(body.slice(1500)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { message: string } }).error.message).toMatch(/over the limit of 2048 bytes \(body\.max_bytes\)/);
    expect(await counts(server)).toEqual(before);
    expect((await server.api('DELETE', '/v1/admin/limits/body.max_bytes')).status).toBe(200);
    expect((await server.api('POST', '/v1/jobs', body)).status).toBe(202);
  });

  it('evaluations: 422 over the most cases per run or the most concurrent runs, naming limit and value; nothing stored', async () => {
    expect((await server.api('POST', '/v1/prompts', textPrompt('limited'))).status).toBe(201);
    const upload = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: casesJsonl(5) });
    const snapshot = ((await upload.json()) as { data_snapshot_id: string }).data_snapshot_id;
    const spec = { prompt_version: 'limited@1', data_snapshot_id: snapshot, provider: { type: 'echo', delay_ms: 3000 }, concurrency: 1 };

    const before = await counts(server);
    const tooMany = await server.api('POST', '/v1/evaluations', spec);
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 3, value: 5 } });
    expect(tooMany.body.error.message).toMatch(/the run would have 5 cases, over the limit of 3 per run \(EVAL_MAX_CASES_PER_RUN\); use sample_size/);
    expect(await counts(server)).toEqual(before);

    const first = await server.api('POST', '/v1/evaluations', { ...spec, sample_size: 3 });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    const second = await server.api('POST', '/v1/evaluations', { ...spec, sample_size: 2 });
    expect(second.status).toBe(422);
    expect(second.body.error.message).toMatch(/1 evaluation runs are queued or running, the limit is 1 at once \(EVAL_MAX_CONCURRENT_RUNS\)/);
    expect((await counts(server)).runs).toBe(before.runs + 1);

    // Raised at runtime: accepted without a restart.
    expect((await server.api('PUT', '/v1/admin/limits', { 'eval.max_concurrent_runs': 2, 'eval.max_cases_per_run': 0 })).status).toBe(200);
    expect((await server.api('POST', '/v1/evaluations', spec)).status).toBe(202);
    for (const run of (await server.api('GET', '/v1/evaluations')).body.runs) await server.api('POST', `/v1/evaluations/${run.run_id}/cancel`);
  });
});

describe('load shedding', () => {
  it('answers 503 with Retry-After while the event loop lags, and health keeps answering', async () => {
    let hogUntil = 0;
    const { server } = await serverWith({ LOAD_SHED_EVENT_LOOP_DELAY_MS: '40' }, {
      routes: async (app) => {
        app.post('/test/hog', async () => {
          // Busy turns of 150 ms with a short breath between them, for 4 s: a lagging event loop.
          hogUntil = Date.now() + 4000;
          const turn = () => {
            const end = Date.now() + 150;
            while (Date.now() < end) {
              /* busy */
            }
            if (Date.now() < hogUntil) setTimeout(turn, 1);
          };
          setTimeout(turn, 1);
          return { ok: true };
        });
      },
    });
    // Lag in the first seconds after start-up is not shed (start-up itself blocks the loop).
    await new Promise((r) => setTimeout(r, 5500));
    expect((await server.api('POST', '/test/hog')).status).toBe(200);
    const shed = await waitFor('a shed request', async () => {
      const res = await server.api('GET', '/v1/jobs?limit=1');
      return res.status === 503 ? res : undefined;
    }, 4000, 20);
    expect(shed.headers.get('retry-after')).toBe('5');
    expect(shed.body.error).toMatchObject({ code: 'UNAVAILABLE', error_id: expect.any(String) });
    expect(shed.body.error.message).toMatch(/the server is overloaded \(event loop delay \d+ ms over 40 ms \(LOAD_SHED_EVENT_LOOP_DELAY_MS\)\); retry after 5 s/);
    expect(server.logs.filter((l) => l.error_id === shed.body.error.error_id)).toHaveLength(1);
    expect((await server.api('GET', '/health')).status).toBe(200);
    expect([200, 503]).toContain((await server.api('GET', '/health/detailed')).status);
    expect((await server.api('GET', '/metrics')).status).toBe(200);
    await waitFor('the load to pass', async () => Date.now() > hogUntil + 1500 && (await server.api('GET', '/v1/jobs?limit=1')).status === 200, 10_000, 100);
  });

  it('answers 503 when the heap is above LOAD_SHED_HEAP_PERCENT, and health keeps answering', async () => {
    const { server } = await serverWith({ LOAD_SHED_HEAP_PERCENT: '1' });
    const shed = await waitFor('heap pressure to be sampled', async () => {
      const res = await server.api('GET', '/v1/jobs?limit=1');
      return res.status === 503 ? res : undefined;
    }, 5000, 50);
    expect(shed.body.error.message).toMatch(/heap \d+ MiB over 1% of its limit \(LOAD_SHED_HEAP_PERCENT\)/);
    expect(shed.headers.get('retry-after')).toBe('5');
    expect((await server.api('GET', '/health')).status).toBe(200);
  });
});

describe('security headers and CORS', () => {
  it('sends helmet headers on answers and errors; no CORS headers unless configured', async () => {
    const { server } = await serverWith();
    for (const route of ['/v1/jobs', '/v1/nothing', '/health']) {
      const res = await server.api('GET', route, undefined, { origin: 'https://evil.example' });
      const liveness = route === '/health';
      expect(res.headers.get('x-content-type-options'), route).toBe('nosniff');
      expect(res.headers.get('x-request-id'), route).toBeTruthy();
      expect(res.headers.get('access-control-allow-origin'), route).toBeNull();
      if (liveness) {
        // The liveness answer: the REST policy (it loads nothing; frame-ancestors instead of
        // X-Frame-Options) and nosniff, nothing a browser only needs from pages.
        expect(res.headers.get('content-security-policy'), route).toBe("default-src 'none'; frame-ancestors 'self'");
        for (const pageHeader of ['x-frame-options', 'strict-transport-security', 'referrer-policy', 'cross-origin-opener-policy']) expect(res.headers.get(pageHeader), `${route} ${pageHeader}`).toBeNull();
      } else {
        expect(res.headers.get('content-security-policy'), route).toContain("default-src 'self'");
        expect(res.headers.get('x-frame-options'), route).toBe('SAMEORIGIN');
        expect(res.headers.get('strict-transport-security'), route).toContain('max-age=');
        expect(res.headers.get('referrer-policy'), route).toBe('no-referrer');
        expect(res.headers.get('cross-origin-opener-policy'), route).toBe('same-origin');
      }
    }
    const preflight = await fetch(`${server.url}/v1/jobs`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('CORS_ORIGINS allows the listed origins only, preflight included', async () => {
    const { server } = await serverWith({ CORS_ORIGINS: 'https://app.example.com' });
    const key = (await server.api('POST', '/v1/admin/api-keys', { name: 'web', scopes: ['read'] })).body.key;
    const preflight = await fetch(`${server.url}/v1/jobs`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const allowed = await server.api('GET', '/v1/jobs', undefined, { origin: 'https://app.example.com', ...bearer(key) });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await server.api('GET', '/v1/jobs', undefined, { origin: 'https://evil.example', ...bearer(key) });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
