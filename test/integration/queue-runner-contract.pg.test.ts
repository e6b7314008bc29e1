import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type JobHandler, UnrecoverableJobError } from '../../src/jobs/handler-registry.ts';
import { waitFor } from '../helpers/processes.ts';
import { deletePrefix, startTestWorker, TEST_REDIS_URL, type TestWorker, testPrefix } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The runner contract, run against both runners: the in-process runner (the API runs jobs from the
 * table) and queue mode (the API dispatches through BullMQ to a worker). Same handlers, same
 * expectations; each runner on a PostgreSQL database of its own, queue mode under a Redis prefix of
 * its own.
 */

const flaky: JobHandler<{ fail_times: number }> = {
  type: 'flaky',
  description: 'fails its first fail_times attempts',
  payloadSchema: z.object({ fail_times: z.number().int() }),
  async run(payload, ctx) {
    if (ctx.attempt <= payload.fail_times) throw new Error(`planned failure on attempt ${ctx.attempt}`);
    ctx.progress({ done: 1 });
    return { attempt: ctx.attempt };
  },
};
const broken: JobHandler<Record<string, never>> = {
  type: 'broken',
  description: 'fails without retry',
  payloadSchema: z.object({}),
  async run() {
    throw new UnrecoverableJobError('input can never work');
  },
};
const stuck: JobHandler<Record<string, never>> = {
  type: 'stuck',
  description: 'runs past its timeout',
  payloadSchema: z.object({}),
  timeoutMs: 200,
  async run(_p, ctx) {
    await sleep(60_000, undefined, { signal: ctx.signal });
  },
};
const poison: JobHandler<Record<string, never>> = {
  type: 'poison',
  description: 'succeeds with a result jsonb refuses (a NUL character)',
  payloadSchema: z.object({}),
  async run() {
    return { text: 'a\u0000b' };
  },
};
const handlers = [flaky, broken, stuck, poison];

interface Setup {
  server: TestServer;
  worker?: TestWorker;
  close(): Promise<void>;
}

const runners: Record<'inprocess' | 'queue', () => Promise<Setup & { db: TestDatabase }>> = {
  async inprocess() {
    const db = await createTestDatabase({ backend: 'postgres' });
    const server = await startTestServer(db, { JOB_RUNNER_MODE: 'inprocess' }, { handlers });
    return {
      db,
      server,
      async close() {
        await server.close(2000);
        await db.cleanup();
      },
    };
  },
  async queue() {
    const db = await createTestDatabase({ backend: 'postgres' });
    const prefix = testPrefix('contract');
    const env = { JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500' };
    const server = await startTestServer(db, env, { handlers });
    let worker: TestWorker | undefined;
    try {
      worker = await startTestWorker(db, env, { handlers, name: 'contract', concurrency: 10, metricsPort: null });
    } catch (err) {
      await server.close(2000);
      throw err;
    }
    return {
      db,
      server,
      worker,
      async close() {
        await worker?.close(2000);
        await server.close(2000);
        await deletePrefix(TEST_REDIS_URL, prefix);
        await db.cleanup();
      },
    };
  },
};

describe.each(['inprocess', 'queue'] as const)('runner contract: %s', (mode) => {
  let setup: Awaited<ReturnType<(typeof runners)['queue']>>;
  beforeAll(async () => {
    setup = await runners[mode]();
  });
  afterAll(async () => {
    await setup?.close();
  });

  const api = (method: string, route: string, body?: unknown) => setup.server.api(method, route, body);
  const submit = async (body: unknown) => {
    const res = await api('POST', '/v1/jobs', body);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.job_id as string;
  };
  const untilStatus = (id: string, statuses: string[], timeoutMs = 20_000) =>
    waitFor(`job ${id} to reach ${statuses.join('/')}`, async () => {
      const { body } = await api('GET', `/v1/jobs/${id}`);
      return statuses.includes(body.status) ? body : undefined;
    }, timeoutMs);

  it('runs a noop job to succeeded, stamping each transition and releasing the row', async () => {
    const id = await submit({ type: 'noop', payload: { hello: 'world' } });
    const done = await untilStatus(id, ['succeeded']);
    expect(done).toMatchObject({ result: { ok: true }, attempts: 1, locked_by: null, lease_expires_at: null });
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(Date.parse(done.created_at));
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.started_at));
  });

  it('runs every job of a batch submit (POST /v1/jobs/batch) to succeeded', async () => {
    const res = await api('POST', '/v1/jobs/batch', { jobs: Array.from({ length: 200 }, (_, i) => ({ type: 'noop', payload: { i } })) });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.created).toBe(200);
    const ids: string[] = res.body.jobs.map((j: { job_id: string }) => j.job_id);
    await waitFor('the 200 batch jobs to succeed', async () => {
      const { rows } = await sql<{ done: number; other: number }>`
        SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS other
        FROM jobs WHERE job_id = ANY(${ids}::uuid[])`.execute(setup.server.database.db);
      if (rows[0]!.other > 0) throw new Error(`${rows[0]!.other} batch job(s) failed or were cancelled`);
      return rows[0]!.done === ids.length;
    }, 30_000);
    const sample = await untilStatus(ids[123]!, ['succeeded']);
    expect(sample).toMatchObject({ payload: { i: 123 }, result: { ok: true }, attempts: 1 });
  });

  it('retries a failing job with backoff until it succeeds, keeping its progress', async () => {
    const id = await submit({ type: 'flaky', payload: { fail_times: 2 }, max_attempts: 3 });
    const done = await untilStatus(id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 3, result: { attempt: 3 }, progress: { done: 1 } });
    expect(done.error_message).toBe('attempt 2 of 3: planned failure on attempt 2');
  });

  it('fails a job once its attempts run out, and an API retry runs it again', async () => {
    const id = await submit({ type: 'flaky', payload: { fail_times: 5 }, max_attempts: 2 });
    const failed = await untilStatus(id, ['failed']);
    expect(failed).toMatchObject({ attempts: 2, error_message: 'attempt 2 of 2: planned failure on attempt 2' });
    const retried = await api('POST', `/v1/jobs/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'queued', attempts: 0 });
    const again = await untilStatus(id, ['failed']);
    expect(again.attempts).toBe(2);
  });

  it('fails an unrecoverable error at once, and a timed-out attempt with a message', async () => {
    const b = await untilStatus(await submit({ type: 'broken', max_attempts: 5 }), ['failed']);
    expect(b.attempts).toBe(1);
    expect(b.error_message).toContain('input can never work');
    const s = await untilStatus(await submit({ type: 'stuck', max_attempts: 1 }), ['failed']);
    expect(s.error_message).toBe('attempt 1 of 1: timed out after 200 ms');
  });

  it('fails only the job whose result the database refuses, not the others stored with it', async () => {
    // Submitted together, so the successes are written in the same batches as the refused one.
    const [refused, ...others] = await Promise.all([submit({ type: 'poison', max_attempts: 2 }), ...Array.from({ length: 20 }, () => submit({ type: 'noop' }))]);
    const failed = await untilStatus(refused!, ['succeeded', 'failed']);
    expect(failed).toMatchObject({ status: 'failed', attempts: 2, result: null });
    expect(failed.error_message).toMatch(/^attempt 2 of 2: unsupported Unicode escape sequence/);
    for (const id of others) expect(await untilStatus(id, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('cancels a queued job at once, and a running sleep job through its signal', async () => {
    const later = await submit({ type: 'noop', run_at: new Date(Date.now() + 3_600_000).toISOString() });
    const cancelled = await api('POST', `/v1/jobs/${later}/cancel`);
    expect(cancelled.body.status).toBe('cancelled');

    const id = await submit({ type: 'sleep', payload: { ms: 60_000 } });
    await untilStatus(id, ['running']);
    const asked = await api('POST', `/v1/jobs/${id}/cancel`);
    expect(asked.status).toBe(202);
    const done = await untilStatus(id, ['cancelled'], 10_000);
    expect(done.error_message).toMatch(/^cancelled/);
    // One clock (the database's): from the request to the recorded cancellation.
    expect(Date.parse(done.finished_at) - Date.parse(done.cancel_requested_at)).toBeLessThan(1000);
  });

  it('starts a delayed job no earlier than its run_at', async () => {
    const runAt = new Date(Date.now() + 1500);
    const id = await submit({ type: 'noop', run_at: runAt.toISOString() });
    await sleep(500);
    expect((await api('GET', `/v1/jobs/${id}`)).body.status).toBe('queued');
    const done = await untilStatus(id, ['succeeded']);
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(runAt.getTime() - 5);
  });

  it('runs higher priority first', async () => {
    // Due together: both delayed to the same moment, then compare start order.
    const runAt = new Date(Date.now() + 800).toISOString();
    const low = await submit({ type: 'noop', priority: -5, run_at: runAt });
    const mid = await submit({ type: 'noop', priority: 0, run_at: runAt });
    const high = await submit({ type: 'noop', priority: 10, run_at: runAt });
    const [l, m, h] = await Promise.all([untilStatus(low, ['succeeded']), untilStatus(mid, ['succeeded']), untilStatus(high, ['succeeded'])]);
    expect(Date.parse(h.started_at)).toBeLessThanOrEqual(Date.parse(m.started_at));
    expect(Date.parse(m.started_at)).toBeLessThanOrEqual(Date.parse(l.started_at));
  });

  it('reports the runner in /health/detailed', async () => {
    const { status, body } = await api('GET', '/health/detailed');
    expect(status).toBe(200);
    expect(body.components.background_tasks).toMatchObject({ status: 'healthy', details: { runner_mode: mode } });
    if (mode === 'queue') {
      expect(body.components.redis).toMatchObject({ status: 'healthy', details: { maxmemory_policy: 'noeviction' } });
      expect(body.components.background_tasks.details).toMatchObject({ live_workers: 1, workers: [expect.objectContaining({ name: 'contract', concurrency: 10 })] });
      expect(body.components.background_tasks.details.broker_backlog).toEqual(expect.objectContaining({ failed: 0 }));
    }
  });
});
