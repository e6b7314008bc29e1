import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/processes.ts';
import { deletePrefix, spawnWorker, TEST_REDIS_URL, testPrefix, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Queue-mode workers as real processes: killed with SIGKILL mid-run, drained with SIGTERM, asked to
 * cancel, and read for their logs. The API runs in this process; the outcomes are read from the table.
 */

let db: TestDatabase;
let server: TestServer;
let sqlClient: pg.Client;
const prefix = testPrefix('crash');
const workers: WorkerProcess[] = [];
const workerEnv = () => ({ ...db.env, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, JOB_LEASE_MS: '3000', SHUTDOWN_GRACE_MS: '1000', JOB_RETRY_BASE_MS: '50' });

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  server = await startTestServer(db, { JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500', JOB_LEASE_MS: '3000' });
  sqlClient = new pg.Client({ connectionString: db.databaseUrl });
  await sqlClient.connect();
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop('SIGKILL', 5000)));
  await sqlClient?.end();
  await server?.close(2000);
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

async function startWorker(args: string[]): Promise<WorkerProcess> {
  const w = await spawnWorker(workerEnv(), args);
  workers.push(w);
  return w;
}

const query = async <T>(text: string, params: unknown[] = []): Promise<T[]> => (await sqlClient.query(text, params)).rows as T[];

async function submitAll(bodies: unknown[], parallel = 10): Promise<string[]> {
  const ids: string[] = new Array(bodies.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const res = await server.api('POST', '/v1/jobs', bodies[i]);
        expect(res.status).toBe(202);
        ids[i] = res.body.job_id;
      }
    }),
  );
  return ids;
}

const untilStatus = (id: string, statuses: string[], timeoutMs = 20_000) =>
  waitFor(`job ${id} to reach ${statuses.join('/')}`, async () => {
    const { body } = await server.api('GET', `/v1/jobs/${id}`);
    return statuses.includes(body.status) ? body : undefined;
  }, timeoutMs);

describe('a worker SIGKILLed mid-run', () => {
  it('loses no job: a second worker finishes all 500, every noop ran, no row stays running', async () => {
    const first = await startWorker(['--name', 'doomed', '--concurrency', '20']);
    // Interleaved: slow jobs keep the first worker busy long enough to be killed mid-run.
    const bodies = Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? { type: 'sleep', payload: { ms: 400 } } : { type: 'noop', payload: { i } }));
    const ids = await submitAll(bodies);
    expect(new Set(ids).size).toBe(500);

    await waitFor('the first worker to be mid-run (some done, some running)', async () => {
      const [row] = await query<{ done: number; running: number }>(
        `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status = 'running')::int AS running FROM jobs WHERE job_id = ANY($1::uuid[])`,
        [ids],
      );
      return row!.done >= 50 && row!.running >= 5;
    }, 60_000, 20);
    await first.stop('SIGKILL');
    const killedWhileRunning = (await query<{ job_id: string }>(`SELECT job_id FROM jobs WHERE status = 'running' AND locked_by LIKE 'doomed:%'`)).map((r) => r.job_id);
    expect(killedWhileRunning.length).toBeGreaterThan(0);

    const rescuer = await startWorker(['--name', 'rescuer', '--concurrency', '20']);
    await waitFor('every job to reach a final status', async () => {
      const [row] = await query<{ open: number }>(`SELECT count(*)::int AS open FROM jobs WHERE job_id = ANY($1::uuid[]) AND status IN ('queued', 'running')`, [ids]);
      return row!.open === 0;
    }, 120_000, 250);

    const rows = await query<{ job_id: string; type: string; status: string; attempts: number; result: unknown; error_message: string | null }>(
      `SELECT job_id, type, status, attempts, result, error_message FROM jobs WHERE job_id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows).toHaveLength(500);
    expect(rows.filter((r) => r.status === 'running')).toEqual([]);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    for (const r of rows.filter((r) => r.type === 'noop')) expect(r.result).toEqual({ ok: true });
    const killed = rows.filter((r) => killedWhileRunning.includes(r.job_id));
    for (const r of killed) {
      expect(r.attempts).toBeGreaterThanOrEqual(2);
      expect(r.error_message).toMatch(/^lost: doomed:.* stopped renewing its lease/);
    }
    expect(await rescuer.stop('SIGTERM', 20_000)).toBe(0);
  });
});

describe('SIGTERM on a worker', () => {
  it('lets a short job finish and hands a long one back to BullMQ unpenalised, where the next worker takes it', async () => {
    const w = await startWorker(['--name', 'draining', '--concurrency', '4']);
    const [short, long] = (await submitAll([{ type: 'sleep', payload: { ms: 300 } }, { type: 'sleep', payload: { ms: 60_000 } }], 1)) as [string, string];
    await waitFor('both running', async () => {
      const rows = await query<{ status: string }>(`SELECT status FROM jobs WHERE job_id = ANY($1::uuid[])`, [[short, long]]);
      return rows.every((r) => r.status === 'running');
    });
    expect(await w.stop('SIGTERM', 20_000)).toBe(0);
    expect(w.logs.some((l) => l.msg === 'job handed back to the queue at shutdown' && l.job_id === long)).toBe(true);
    expect((await server.api('GET', `/v1/jobs/${short}`)).body.status).toBe('succeeded');
    expect((await server.api('GET', `/v1/jobs/${long}`)).body).toMatchObject({ status: 'queued', attempts: 0, locked_by: null });

    const next = await startWorker(['--name', 'next', '--concurrency', '4']);
    const taken = await untilStatus(long, ['running']);
    expect(taken.locked_by).toMatch(/^next:/);
    await server.api('POST', `/v1/jobs/${long}/cancel`);
    await untilStatus(long, ['cancelled']);
    expect(await next.stop('SIGTERM', 20_000)).toBe(0);
  });
});

describe('cancellation of a job running on a worker', () => {
  it('is recorded within 1 s of the request (by the database clock)', async () => {
    const w = await startWorker(['--name', 'canceller']);
    let id: string | undefined;
    try {
      [id] = await submitAll([{ type: 'sleep', payload: { ms: 60_000 } }], 1);
      await untilStatus(id!, ['running']);
      const asked = await server.api('POST', `/v1/jobs/${id}/cancel`);
      expect(asked.status).toBe(202);
      const done = await untilStatus(id!, ['cancelled'], 10_000);
      expect(done.locked_by).toBeNull();
      expect(done.error_message).toMatch(/^cancelled/);
      expect(Date.parse(done.finished_at) - Date.parse(done.cancel_requested_at)).toBeLessThan(1000);
    } finally {
      await w.stop('SIGTERM');
    }
    // Read once the worker has exited: its stdout is flushed at exit (and every 250 ms before).
    expect(w.logs.some((l) => l.msg === 'cancelling running job' && l.job_id === id)).toBe(true);
  });
});

describe('worker logs', () => {
  it('are JSON lines on stdout with job_id, type and attempt; errors with stacks go to stderr only', async () => {
    const w = await startWorker(['--name', 'logger']);
    // Stopped in afterAll too; stopped here first so its stdout is complete.
    const [ok] = await submitAll([{ type: 'noop' }], 1);
    await untilStatus(ok!, ['succeeded']);
    // A payload the API would refuse, written straight into the table: the reconciler dispatches it
    // and the handler's validation fails for good.
    const bad = (
      await query<{ job_id: string }>(
        `INSERT INTO jobs (job_id, type, payload, max_attempts, updated_at) VALUES (gen_random_uuid(), 'sleep', '{"ms": "soon"}', 3, now() - INTERVAL '5 seconds') RETURNING job_id`,
      )
    )[0]!.job_id;
    const failed = await untilStatus(bad, ['failed'], 20_000);
    expect(failed.attempts).toBe(1);
    await waitFor('the error on stderr', async () => w.stderr().includes(bad));
    await w.stop('SIGTERM');

    const finished = w.logs.find((l) => l.msg === 'job finished' && l.job_id === ok);
    expect(finished).toMatchObject({ type: 'noop', attempt: 1, outcome: 'succeeded', level: 'info' });
    expect(w.logs.every((l) => l.level !== 'error' && l.level !== 'fatal')).toBe(true);
    // Every stderr line of ours is JSON (a library's own warning would not be, and is skipped).
    const errors = w.stderr().trim().split('\n').flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, any>] : []));
    const failure = errors.find((e) => e.msg === 'job failed' && e.job_id === bad);
    expect(failure).toMatchObject({ level: 'error', type: 'sleep', attempt: 1, err: { stack: expect.stringMatching(/\n\s+at /) } });
    expect(failed.error_message).toMatch(/^attempt 1 of 3: .*ms/s);
  });
});
