import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/database.ts';
import type { JobDispatcher } from '../../src/jobs/dispatch.ts';
import { HandlerRegistry } from '../../src/jobs/handler-registry.ts';
import { BUILTIN_HANDLERS } from '../../src/jobs/handlers/builtin-handlers.ts';
import { JobService } from '../../src/jobs/job-service.ts';
import { InProcessRunner } from '../../src/jobs/runners/inprocess-runner.ts';
import { createLogger } from '../../src/obs/logger.ts';
import { Metrics } from '../../src/obs/metrics.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer } from '../helpers/test-server.ts';

// Submit batching (concurrent submits share one INSERT), the in-process runner's direct wake-up and
// its ANALYZE of the jobs table. PostgreSQL-only parts (other connections, a second instance) are in
// jobs-wakeup.pg.test.ts.

let db: TestDatabase;
let database: DatabaseHandle;
const registry = new HandlerRegistry();
for (const handler of BUILTIN_HANDLERS) registry.register(handler);
const silent = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) });

/** A dispatcher that wakes nothing but records what it was handed, as the in-process runner's stands in. */
function recordingDispatcher(): JobDispatcher & { dispatched: string[] } {
  const dispatched: string[] = [];
  return {
    dispatched,
    localWakeUp: { senderId: 'test-dispatcher', notifyPeers: false, onNotifyError: () => {} },
    async dispatch(jobs) {
      for (const job of jobs) dispatched.push(job.job_id);
    },
    async withdraw() {},
  };
}

const service = (dispatcher?: JobDispatcher) => new JobService(database.db, registry, new Metrics(), { payloadLimitBytes: 100_000, defaultMaxAttempts: 3 }, dispatcher);

/** How many transactions wrote these rows (rows of one INSERT share their xmin). */
async function writers(ids: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(DISTINCT xmin::text)::int AS n FROM jobs WHERE job_id = ANY(${ids}::uuid[])`.execute(database.db);
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  db = await createTestDatabase();
  database = await openDatabase({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, poolSize: 4 });
});

afterAll(async () => {
  await database?.close();
  await db?.cleanup();
});

describe('submits in one turn of the event loop', () => {
  it('share one INSERT, and each caller gets its own row and the dispatcher every row', async () => {
    const dispatcher = recordingDispatcher();
    const jobs = service(dispatcher);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => jobs.submit({ type: 'noop', payload: { i } })));
    expect(results.every((r) => r.created && r.job.status === 'queued')).toBe(true);
    expect(results.map((r) => r.job.payload)).toEqual(Array.from({ length: 8 }, (_, i) => ({ i })));
    const ids = results.map((r) => r.job.job_id);
    expect(new Set(ids).size).toBe(8);
    expect(await writers(ids)).toBe(1);
    expect([...dispatcher.dispatched].sort()).toEqual([...ids].sort());
  });

  it('treat a repeated idempotency key inside one batch as before: the first wins, a copy replays it, a different request conflicts', async () => {
    const jobs = service(recordingDispatcher());
    const [first, copy, different, other] = await Promise.allSettled([
      jobs.submit({ type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' }),
      jobs.submit({ type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' }),
      jobs.submit({ type: 'noop', payload: { n: 2 }, idempotency_key: 'batch-key' }),
      jobs.submit({ type: 'noop', payload: { n: 3 }, idempotency_key: 'other-key' }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(copy.status).toBe('fulfilled');
    expect(other.status).toBe('fulfilled');
    const a = (first as PromiseFulfilledResult<Awaited<ReturnType<JobService['submit']>>>).value;
    const b = (copy as PromiseFulfilledResult<Awaited<ReturnType<JobService['submit']>>>).value;
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.job.job_id).toBe(a.job.job_id);
    expect(different.status).toBe('rejected');
    expect((different as PromiseRejectedResult).reason).toMatchObject({ code: 'CONFLICT' });
    expect((different as PromiseRejectedResult).reason.message).toContain('already used for a different request');
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = 'batch-key'`.execute(database.db);
    expect(Number(rows[0]!.n)).toBe(1);

    // A key stored by an earlier batch replays in a later one.
    const again = await Promise.all([jobs.submit({ type: 'noop', payload: { n: 1 }, idempotency_key: 'batch-key' }), jobs.submit({ type: 'noop' })]);
    expect(again[0]).toMatchObject({ created: false, job: { job_id: a.job.job_id } });
    expect(again[1].created).toBe(true);
  });

  it('fail only the request whose row the database refuses', async () => {
    const jobs = service(recordingDispatcher());
    const settled = await Promise.allSettled([
      jobs.submit({ type: 'noop', payload: { good: 1 } }),
      // Valid for JavaScript, refused by jsonb: a lone surrogate. (A year before 4713 BC was the
      // example here until run_at took RFC 3339 times only, which refuses it before the INSERT.)
      jobs.submit({ type: 'noop', payload: { bad: 'lone \ud800' } }),
      jobs.submit({ type: 'noop', payload: { good: 2 }, idempotency_key: 'next-to-a-bad-row' }),
      // jsonb refuses \u0000.
      jobs.submit({ type: 'noop', payload: { bad: 'nul\u0000' } }),
      jobs.submit({ type: 'noop', payload: { good: 3 } }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    for (const i of [1, 3]) expect(String(((settled[i] as PromiseRejectedResult).reason as { code?: string }).code)).toMatch(/^22/);
    const good = settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<{ job: { job_id: string; payload: unknown } }>).value.job);
    expect(good.map((j) => j.payload)).toEqual([{ good: 1 }, { good: 2 }, { good: 3 }]);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY(${good.map((j) => j.job_id)}::uuid[])`.execute(database.db);
    expect(Number(rows[0]!.n)).toBe(3);
    const { rows: bad } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE payload ? 'bad'`.execute(database.db);
    expect(Number(bad[0]!.n)).toBe(0);
  });
});

describe('the in-process runner', () => {
  it('starts a job submitted through the API at once, with no NOTIFY from the insert and no poll to help', async () => {
    // A database of its own: the embedded one admits one opener, and this file's is open.
    const own = await createTestDatabase();
    // The poll is a minute away; the insert sends no NOTIFY the runner listens to (its own is ignored).
    const server = await startTestServer(own, { JOB_POLL_MS: '60000' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await server.api('POST', '/v1/jobs', { type: 'noop' });
        expect(res.status).toBe(202);
        ids.push(res.body.job_id);
        await waitFor(`job ${res.body.job_id} to succeed`, async () => (await server.api('GET', `/v1/jobs/${res.body.job_id}`)).body.status === 'succeeded', 15_000);
      }
      // Several at once through HTTP: one bad row among them gets its own 400.
      const answers = await Promise.all([
        server.api('POST', '/v1/jobs', { type: 'noop', payload: { k: 1 } }),
        server.api('POST', '/v1/jobs', { type: 'noop', run_at: '-010000-01-01T00:00:00.000Z' }),
        server.api('POST', '/v1/jobs', { type: 'noop', payload: { k: 2 } }),
      ]);
      expect(answers.map((a) => a.status)).toEqual([202, 400, 202]);
      expect(answers[1]!.body.error).toMatchObject({ code: 'VALIDATION' });
      for (const a of [answers[0]!, answers[2]!]) {
        await waitFor(`job ${a.body.job_id} to succeed`, async () => (await server.api('GET', `/v1/jobs/${a.body.job_id}`)).body.status === 'succeeded', 15_000);
      }
    } finally {
      await server.close(2000);
      await own.cleanup();
    }
  });

  it('refreshes the planner statistics of jobs once many rows changed since the last ANALYZE', async () => {
    // Autovacuum (PostgreSQL) must not get there first: the runner's ANALYZE is what is under test.
    await sql`ALTER TABLE jobs SET (autovacuum_enabled = false)`.execute(database.db);
    const lastAnalyze = async () => {
      const { rows } = await sql<{ at: Date | null }>`SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass`.execute(database.db);
      return rows[0]?.at ?? null;
    };
    const before = await lastAnalyze();
    await sql`
      INSERT INTO jobs (job_id, type, status, finished_at)
      SELECT gen_random_uuid(), 'noop', 'succeeded', now() FROM generate_series(1, 3000)`.execute(database.db);
    const runner = new InProcessRunner({
      database,
      registry,
      logger: silent,
      metrics: new Metrics(),
      concurrency: 2,
      leaseMs: 15_000,
      pollMs: 1000,
      retryBaseMs: 20,
      retryMaxMs: 200,
      analyzeCheckMs: 100,
    });
    await runner.start();
    try {
      const at = await waitFor('the runner to ANALYZE jobs', async () => {
        const now = await lastAnalyze();
        return now && (!before || now > before) ? now : undefined;
      }, 30_000, 100);
      expect(at).toBeInstanceOf(Date);
      const { rows } = await sql<{ reltuples: number }>`SELECT reltuples::float8 AS reltuples FROM pg_class WHERE oid = 'jobs'::regclass`.execute(database.db);
      expect(Number(rows[0]!.reltuples)).toBeGreaterThanOrEqual(3000);
    } finally {
      await runner.stop(1000);
    }
  });
});
