import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDispatcher } from '../../src/jobs/dispatch.ts';
import { MAX_BATCH_JOBS } from '../../src/jobs/job-service.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * POST /v1/jobs/batch on the in-process runner: jobs answered in request order and run; idempotency
 * keys within the batch and against stored rows; every refusal names the index of the job and
 * stores nothing (validation, conflicts, a value the database refuses, the count and body limits);
 * the jobs:write scope. The last block turns authentication on (it creates keys), so it stays last.
 */

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  // Small limits, so a job over its payload limit and a body over its limit are cheap to build.
  server = await startTestServer(db, { JOB_PAYLOAD_LIMIT_BYTES: '1000', BODY_LIMIT_BYTES: '262144' });
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

const batch = (jobs: unknown[], headers?: Record<string, string>) => server.api('POST', '/v1/jobs/batch', { jobs }, headers);

async function countJobs(): Promise<number> {
  const row = await server.database.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many transactions wrote these rows (rows written together share their xmin). */
async function writers(ids: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(DISTINCT xmin::text)::int AS n FROM jobs WHERE job_id = ANY(${ids}::uuid[])`.execute(server.database.db);
  return Number(rows[0]!.n);
}

const untilAllSucceeded = (ids: string[], timeoutMs = 30_000) =>
  waitFor(`${ids.length} jobs to succeed`, async () => {
    const { rows } = await sql<{ done: number; ended: number }>`
      SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS ended
      FROM jobs WHERE job_id = ANY(${ids}::uuid[])`.execute(server.database.db);
    if (Number(rows[0]!.ended) > 0) throw new Error(`${rows[0]!.ended} job(s) failed or were cancelled`);
    return Number(rows[0]!.done) === ids.length;
  }, timeoutMs);

async function submittedTotal(type: string): Promise<number> {
  const text = (await server.api('GET', '/metrics')).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`evalops_jobs_submitted_total{type="${type}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** Records each dispatch() call of the runner (still passing it on), for the duration of `body`. */
async function recordingDispatches<T>(body: (calls: string[][]) => Promise<T>): Promise<T> {
  const runner = server.runner as unknown as JobDispatcher;
  const original = runner.dispatch;
  const calls: string[][] = [];
  runner.dispatch = (jobs) => {
    calls.push(jobs.map((j) => j.job_id));
    return original.call(runner, jobs);
  };
  try {
    return await body(calls);
  } finally {
    runner.dispatch = original;
  }
}

describe('POST /v1/jobs/batch', () => {
  it('answers the jobs in request order, counts them, hands them to the runner in one call, and runs them', async () => {
    const noopBefore = await submittedTotal('noop');
    const sleepBefore = await submittedTotal('sleep');
    const jobs = Array.from({ length: 50 }, (_, i) => (i % 5 === 4 ? { type: 'sleep', payload: { ms: 1 }, priority: i } : { type: 'noop', payload: { i }, max_attempts: 2 }));
    const { res, calls } = await recordingDispatches(async (calls) => ({ res: await batch(jobs), calls }));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.created).toBe(50);
    expect(res.body.jobs).toHaveLength(50);
    res.body.jobs.forEach((job: any, i: number) => {
      expect(job).toMatchObject({ ...jobs[i], status: 'queued', attempts: 0, idempotency_key: null });
      if (jobs[i]!.type === 'noop') expect(job.max_attempts).toBe(2);
    });
    const ids: string[] = res.body.jobs.map((j: any) => j.job_id);
    expect(new Set(ids).size).toBe(50);
    expect(calls).toEqual([ids]);
    expect(await submittedTotal('noop')).toBe(noopBefore + 40);
    expect(await submittedTotal('sleep')).toBe(sleepBefore + 10);

    await untilAllSucceeded(ids);
    const one = await server.api('GET', `/v1/jobs/${ids[7]}`);
    expect(one.body).toMatchObject({ status: 'succeeded', payload: { i: 7 }, result: { ok: true } });
  });

  it('writes the batch in one transaction', async () => {
    // Due in an hour, so no claim rewrites a row (and its xmin) before it is looked at.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const res = await batch(Array.from({ length: 30 }, (_, i) => ({ type: 'noop', payload: { i }, run_at: later })));
    expect(res.status).toBe(202);
    expect(await writers(res.body.jobs.map((j: any) => j.job_id))).toBe(1);
  });

  it('answers a repeated idempotency key with the first job, within the batch and against a stored job', async () => {
    const stored = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { n: 1 }, idempotency_key: 'stored-key' });
    expect(stored.status).toBe(202);
    const before = await countJobs();
    const res = await batch([
      { type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' },
      { type: 'noop' },
      { type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' },
      { type: 'noop', payload: { n: 1 }, idempotency_key: 'stored-key' },
      { type: 'noop', payload: { n: 1 }, idempotency_key: 'stored-key' },
    ]);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.created).toBe(2);
    const ids = res.body.jobs.map((j: any) => j.job_id);
    expect(ids[2]).toBe(ids[0]);
    expect(ids[3]).toBe(stored.body.job_id);
    expect(ids[4]).toBe(stored.body.job_id);
    expect(new Set(ids).size).toBe(3);
    expect(res.body.jobs[0]).toMatchObject({ idempotency_key: 'batch-key', payload: { n: 1 } });
    expect(await countJobs()).toBe(before + 2);

    // The whole batch again: nothing new, the same jobs.
    const again = await batch([{ type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' }, { type: 'noop', payload: { n: 1 }, idempotency_key: 'stored-key' }]);
    expect(again.status).toBe(202);
    expect(again.body.created).toBe(0);
    expect(again.body.jobs.map((j: any) => j.job_id)).toEqual([ids[0], stored.body.job_id]);
    expect(await countJobs()).toBe(before + 2);

    // Two batches at once sharing keys (in opposite orders): each key stored once, both answer that job.
    const keys = Array.from({ length: 20 }, (_, i) => `shared-${i}`);
    const [a, b] = await Promise.all([batch(keys.map((k) => ({ type: 'noop', idempotency_key: k }))), batch([...keys].reverse().map((k) => ({ type: 'noop', idempotency_key: k })))]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.created + b.body.created).toBe(20);
    expect(b.body.jobs.map((j: any) => j.job_id).reverse()).toEqual(a.body.jobs.map((j: any) => j.job_id));
    expect(await countJobs()).toBe(before + 22);
  });

  it('refuses a different request under a used key with a 409 naming the index, storing none of the batch', async () => {
    const stored = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { n: 1 }, idempotency_key: 'taken-key' });
    const before = await countJobs();

    const inBatch = await batch([{ type: 'noop', payload: { n: 1 }, idempotency_key: 'fresh-1' }, { type: 'noop' }, { type: 'noop', payload: { n: 2 }, idempotency_key: 'fresh-1' }]);
    expect(inBatch.status).toBe(409);
    expect(inBatch.body.error).toMatchObject({ code: 'CONFLICT' });
    expect(inBatch.body.error.message).toBe('jobs.2.idempotency_key: "fresh-1" was already used for a different request (jobs.0): payload {"n":1} there, {"n":2} here');

    const otherType = await batch([{ type: 'noop', idempotency_key: 'fresh-2' }, { type: 'sleep', payload: { ms: 1 }, idempotency_key: 'fresh-2' }]);
    expect(otherType.status).toBe(409);
    expect(otherType.body.error.message).toContain('jobs.1.idempotency_key: "fresh-2"');

    // The conflict with the stored job is found after the INSERT, inside its transaction: rolled back.
    const againstStored = await batch([{ type: 'noop', idempotency_key: 'fresh-3' }, { type: 'noop' }, { type: 'noop', payload: { n: 2 }, idempotency_key: 'taken-key' }]);
    expect(againstStored.status).toBe(409);
    expect(againstStored.body.error.message).toBe(`jobs.2.idempotency_key: "taken-key" was already used for a different request (job ${stored.body.job_id}): payload {"n":1} there, {"n":2} here`);

    expect(await countJobs()).toBe(before);
    const fresh = await server.database.db.selectFrom('jobs').select('job_id').where('idempotency_key', 'in', ['fresh-1', 'fresh-2', 'fresh-3']).execute();
    expect(fresh).toEqual([]);
  });

  it('validates every job before storing any: each refusal names the index, and nothing is stored', async () => {
    const good = { type: 'noop', payload: { ok: true } };
    const before = await countJobs();

    const unknown = await batch([good, good, good, { type: 'x' }]);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'VALIDATION', details: { field: 'jobs.3.type' } });
    expect(unknown.body.error.message).toMatch(/^jobs\.3\.type: unknown job type "x"; known types: .*noop/);

    const big = await batch([good, { type: 'noop', payload: { blob: 'x'.repeat(2000) } }]);
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(big.body.error.message).toMatch(/^jobs\.1\.payload: \d+ bytes is over the limit of 1000 bytes for job type noop/);

    const badPayload = await batch([good, good, { type: 'sleep', payload: { ms: -5 } }]);
    expect(badPayload.status).toBe(400);
    expect(badPayload.body.error.message).toContain('jobs.2.payload.ms');

    const badRunAt = await batch([good, good, good, good, { type: 'noop', run_at: 'tomorrow-ish' }]);
    expect(badRunAt.status).toBe(400);
    expect(badRunAt.body.error.message).toBe('jobs.4.run_at: "tomorrow-ish" is not an RFC 3339 date-time with a time zone, such as 2026-12-08T09:30:00Z');

    // Checked by the route's schema before the service sees the batch: the path names the index too.
    const wrongType = await batch([good, { type: 'noop', max_attempts: 'three' }]);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toContain('body.jobs.1.max_attempts');

    const nul = await batch([good, good, { type: 'noop', payload: { s: 'a\u0000b' } }]);
    expect(nul.status).toBe(400);
    expect(nul.body.error.message).toMatch(/^body\.jobs\.2\.payload\.s: contains a NUL character/);

    // A date JavaScript accepts and PostgreSQL cannot store is not RFC 3339: refused before the INSERT.
    const unstorable = await batch([good, good, { type: 'noop', run_at: '-004800-01-01T00:00:00Z' }]);
    expect(unstorable.status).toBe(400);
    expect(unstorable.body.error.message).toMatch(/^jobs\.2\.run_at: "-004800-01-01T00:00:00Z" is not an RFC 3339 date-time/);

    for (const body of [{}, { jobs: [] }, { jobs: {} }, { jobs: 'noop' }, [good]]) {
      const res = await server.api('POST', '/v1/jobs/batch', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.message).toMatch(/^body/);
    }

    expect(await countJobs()).toBe(before);
  });

  it(`takes up to ${MAX_BATCH_JOBS} jobs; more is a 400 naming the limit, a body over the body limit the usual 413`, async () => {
    expect(MAX_BATCH_JOBS).toBe(1000);
    const before = await countJobs();
    const over = await batch(Array.from({ length: MAX_BATCH_JOBS + 1 }, () => ({ type: 'noop' })));
    expect(over.status).toBe(400);
    expect(over.body.error.message).toBe(`body.jobs: a batch holds at most ${MAX_BATCH_JOBS} jobs (MAX_BATCH_JOBS); send more in several batches`);

    // 300 jobs of about 950 bytes each: every one within its payload limit, the body over 256 KiB.
    const heavy = await batch(Array.from({ length: 300 }, () => ({ type: 'noop', payload: { blob: 'x'.repeat(950) } })));
    expect(heavy.status).toBe(413);
    expect(heavy.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(heavy.body.error.message).toMatch(/^body: .*over the limit of 262144 bytes \(BODY_LIMIT_BYTES\)$/);
    expect(await countJobs()).toBe(before);

    const full = await batch(Array.from({ length: MAX_BATCH_JOBS }, (_, i) => ({ type: 'noop', payload: { i } })));
    expect(full.status).toBe(202);
    expect(full.body.created).toBe(MAX_BATCH_JOBS);
    expect(full.body.jobs.map((j: any) => j.payload.i)).toEqual(Array.from({ length: MAX_BATCH_JOBS }, (_, i) => i));
    expect(await countJobs()).toBe(before + MAX_BATCH_JOBS);
    await untilAllSucceeded(full.body.jobs.map((j: any) => j.job_id), 60_000);
  });

  it('is in the OpenAPI document with its limit', async () => {
    const spec = await server.api('GET', '/docs/json');
    const op = spec.body.paths['/v1/jobs/batch']?.post;
    expect(op).toBeDefined();
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['202']));
    expect(JSON.stringify(op.requestBody)).toContain(`"maxItems":${MAX_BATCH_JOBS}`);
  });
});

// Creates API keys: from here on every request needs one.
describe('POST /v1/jobs/batch with API keys', () => {
  it('needs the jobs:write scope: 403 for a read-only key, nothing stored', async () => {
    const admin = await server.api('POST', '/v1/admin/api-keys', { name: 'batch-admin', scopes: ['admin'] });
    expect(admin.status).toBe(201);
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const reader = (await server.api('POST', '/v1/admin/api-keys', { name: 'batch-reader', scopes: ['read'] }, as(admin.body.key))).body.key as string;
    const writer = (await server.api('POST', '/v1/admin/api-keys', { name: 'batch-writer', scopes: ['read', 'jobs:write'] }, as(admin.body.key))).body.key as string;
    const before = await countJobs();

    const denied = await batch([{ type: 'noop' }], as(reader));
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'FORBIDDEN', details: { needed: 'jobs:write' } });
    expect(await countJobs()).toBe(before);
    expect((await batch([{ type: 'noop' }])).status).toBe(401);

    const allowed = await batch([{ type: 'noop' }], as(writer));
    expect(allowed.status).toBe(202);
    expect(await countJobs()).toBe(before + 1);
  });
});
