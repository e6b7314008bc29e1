import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL, textPrompt } from '../helpers/eval-helpers.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The API takes exactly what it documents: unknown fields and query parameters are a 400 naming
 * them, times are RFC 3339 with a zone, an idempotency key replays only the very same request, and
 * a runtime limit names a real limit.
 */

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

const countJobs = async () => Number((await server.database.db.selectFrom('jobs').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

describe('unknown fields', () => {
  it('a rerun with an unknown body field is a 400 naming it, and starts no run', async () => {
    const prompt = (await server.api('POST', '/v1/prompts', textPrompt('strict'))).body.prompt_version;
    const upload = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"id":"a","vars":{"text":"x"},"expected":"x"}\n', signal: AbortSignal.timeout(15_000) });
    const snapshot = ((await upload.json()) as { data_snapshot_id: string }).data_snapshot_id;
    const run = await server.api('POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, provider: { type: 'echo' }, model: 'echo', scorers: [{ name: 'match', type: 'exact' }] });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    await waitFor('run finished', async () => (FINAL.includes((await server.api('GET', `/v1/evaluations/${run.body.run_id}`)).body.status) ? true : undefined), 30_000);
    const runs = async () => (await server.api('GET', '/v1/evaluations')).body.runs.length;
    const before = await runs();

    const rerun = await server.api('POST', `/v1/evaluations/${run.body.run_id}/rerun`, { zz: 1 });
    expect(rerun.status, JSON.stringify(rerun.body)).toBe(400);
    expect(rerun.body.error).toMatchObject({ code: 'VALIDATION' });
    expect(rerun.body.error.message).toMatch(/^body: Unrecognized key: "zz"$/);
    expect(await runs()).toBe(before);
    // The documented field still works.
    expect((await server.api('POST', `/v1/evaluations/${run.body.run_id}/rerun`, { mode: 'replay' })).status).toBe(202);
  });

  it('a job, a batch item or a query parameter with an unknown name is a 400 naming it, storing nothing', async () => {
    const before = await countJobs();
    const single = await server.api('POST', '/v1/jobs', { type: 'noop', zz: 1 });
    expect(single.status).toBe(400);
    expect(single.body.error.message).toContain('Unrecognized key: "zz"');
    const batch = await server.api('POST', '/v1/jobs/batch', { jobs: [{ type: 'noop' }, { type: 'noop', priorty: 3 }] });
    expect(batch.status).toBe(400);
    expect(batch.body.error.message).toMatch(/body\.jobs\.1: Unrecognized key: "priorty"/);
    expect(await countJobs()).toBe(before);
    const listed = await server.api('GET', '/v1/jobs?statuss=queued');
    expect(listed.status).toBe(400);
    expect(listed.body.error.message).toMatch(/querystring: Unrecognized key: "statuss"/);
  });

  it('every documented route that takes a body or a query refuses an unknown name, naming it', async () => {
    const doc = (await server.api('GET', '/docs/json')).body as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> }; parameters?: Array<{ in: string }> }>> };
    const checked: string[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      const url = template.replace(/\{(\w+)\}/g, (_m, p: string) => (p === 'id' ? '00000000-0000-4000-8000-000000000000' : p === 'version' ? '1' : 'no-such-thing'));
      for (const [method, op] of Object.entries(methods)) {
        if (op.requestBody?.content?.['application/json']) {
          const res = await server.api(method.toUpperCase(), url, { zz_unknown: 1 });
          expect(res.status, `${method} ${template} body: ${JSON.stringify(res.body)}`).toBe(400);
          expect(res.body.error.message, `${method} ${template} body`).toContain('zz_unknown');
          checked.push(`${method.toUpperCase()} ${template} body`);
        }
        if (op.parameters?.some((p) => p.in === 'query')) {
          const res = await server.api(method.toUpperCase(), `${url}?zz_unknown=1`);
          expect(res.status, `${method} ${template} query: ${JSON.stringify(res.body)}`).toBe(400);
          expect(res.body.error.message, `${method} ${template} query`).toContain('zz_unknown');
          checked.push(`${method.toUpperCase()} ${template} query`);
        }
      }
    }
    expect(checked.length).toBeGreaterThanOrEqual(20);
    console.log(`unknown names refused on ${checked.length} inputs:\n  ${checked.join('\n  ')}`);
  });
});

describe('times', () => {
  it('run_at is RFC 3339 with a zone: "1", a date alone, a local time and February 30th are refused', async () => {
    const before = await countJobs();
    for (const runAt of ['1', '2026-12-08', '2026-12-08T09:30:00', '2026-02-30T00:00:00Z', '2026-12-08 09:30:00Z', 'tomorrow']) {
      const res = await server.api('POST', '/v1/jobs', { type: 'noop', run_at: runAt });
      expect(res.status, runAt).toBe(400);
      expect(res.body.error.message, runAt).toContain('run_at');
      expect(res.body.error.message, runAt).toContain('RFC 3339');
    }
    expect(await countJobs()).toBe(before);
    const zoned = await server.api('POST', '/v1/jobs', { type: 'noop', run_at: '2099-12-08T18:30:00.5+09:00' });
    expect(zoned.status).toBe(202);
    expect(zoned.body.run_at).toBe('2099-12-08T09:30:00.500Z');
  });

  it('a list filter takes a duration or an RFC 3339 time, nothing else', async () => {
    expect((await server.api('GET', '/v1/jobs?since=1h')).status).toBe(200);
    expect((await server.api('GET', '/v1/jobs?since=2026-01-01T00:00:00Z')).status).toBe(200);
    expect((await server.api('GET', '/v1/jobs/stats?since=2026-01-01T00:00:00%2B09:00')).status).toBe(200);
    for (const since of ['2026-01-01', '2026-01-01T00:00:00', 'yesterday']) {
      const res = await server.api('GET', `/v1/jobs?since=${encodeURIComponent(since)}`);
      expect(res.status, since).toBe(400);
      expect(res.body.error.message, since).toMatch(/^since: .* RFC 3339/);
    }
  });
});

describe('idempotency keys', () => {
  it('replay only the same request: a different priority, max_attempts or run_at is a 409 naming the field', async () => {
    const first = { type: 'noop', payload: { a: 1 }, idempotency_key: 'idem-fields', priority: 1, max_attempts: 2, run_at: '2099-01-01T00:00:00Z' };
    const stored = await server.api('POST', '/v1/jobs', first);
    expect(stored.status).toBe(202);
    // The same instant written with another offset is the same request.
    const same = await server.api('POST', '/v1/jobs', { ...first, run_at: '2099-01-01T09:00:00+09:00' });
    expect(same.status).toBe(200);
    expect(same.body.job_id).toBe(stored.body.job_id);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ priority: 5 }, /priority 1 there, 5 here/],
      [{ max_attempts: 3 }, /max_attempts 2 there, 3 here/],
      [{ run_at: '2099-01-02T00:00:00Z' }, /run_at 2099-01-01T00:00:00\.000Z there, 2099-01-02T00:00:00\.000Z here/],
      [{ run_at: undefined }, /run_at 2099-01-01T00:00:00\.000Z there, none here/],
    ];
    for (const [change, message] of cases) {
      const res = await server.api('POST', '/v1/jobs', { ...first, ...change });
      expect(res.status, JSON.stringify(change)).toBe(409);
      expect(res.body.error.message).toMatch(/^idempotency_key: "idem-fields" was already used for a different request \(job [0-9a-f-]{36}\): /);
      expect(res.body.error.message).toMatch(message);
      const inBatch = await server.api('POST', '/v1/jobs/batch', { jobs: [{ type: 'noop' }, { ...first, ...change }] });
      expect(inBatch.status, JSON.stringify(change)).toBe(409);
      expect(inBatch.body.error.message).toMatch(message);
    }
    const withinBatch = await server.api('POST', '/v1/jobs/batch', { jobs: [{ type: 'noop', idempotency_key: 'idem-batch', priority: 1 }, { type: 'noop', idempotency_key: 'idem-batch', priority: 2 }] });
    expect(withinBatch.status).toBe(409);
    expect(withinBatch.body.error.message).toMatch(/jobs\.1\.idempotency_key: "idem-batch" .*\(jobs\.0\): priority 1 there, 2 here/);
  });

  it('compares with the run_at the request named, not the one a retry moved', async () => {
    const first = { type: 'sleep', payload: { ms: 0 }, idempotency_key: 'idem-retried', max_attempts: 1 };
    const stored = await server.api('POST', '/v1/jobs', first);
    await waitFor('job done', async () => ((await server.api('GET', `/v1/jobs/${stored.body.job_id}`)).body.status === 'succeeded' ? true : undefined), 20_000);
    expect((await server.api('POST', '/v1/jobs', first)).status).toBe(200);
    const later = await server.api('POST', '/v1/jobs', { ...first, run_at: new Date(Date.now() + 60_000).toISOString() });
    expect(later.status).toBe(409);
    expect(later.body.error.message).toMatch(/run_at none there, .* here/);
  });
});

describe('runtime limit names', () => {
  it('refuses a per-type limit for a type that is not a job type, naming it, and stores nothing', async () => {
    for (const name of ['job.payload_bytes.__proto__', 'job.payload_bytes.constructor', 'job.payload_bytes.nosuchtype']) {
      const res = await server.api('PUT', '/v1/admin/limits', { [name]: 5000 });
      expect(res.status, name).toBe(400);
      expect(res.body.error.message).toContain(`"${name}" is not a limit`);
      expect(res.body.error.message).toMatch(/the job types are evaluation, noop, sleep$/);
    }
    const rows = await server.database.db.selectFrom('runtime_limits').select('name').execute();
    expect(rows.map((r) => r.name).filter((n) => n.startsWith('job.payload_bytes.'))).toEqual([]);
    expect((await server.api('PUT', '/v1/admin/limits', { 'job.payload_bytes.sleep': 5000 })).status).toBe(200);
  });
});
