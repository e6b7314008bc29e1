import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { type JobHandler, UnrecoverableJobError } from '../../src/jobs/handler-registry.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { waitFor } from '../helpers/processes.ts';

// Handlers that exist only in this test, to drive failures, retries and timeouts.
const attemptsSeen = new Map<string, number>();
const flaky: JobHandler<{ fail_times: number }> = {
  type: 'flaky',
  description: 'fails its first fail_times attempts',
  payloadSchema: z.object({ fail_times: z.number().int() }),
  async run(payload, ctx) {
    attemptsSeen.set(ctx.jobId, ctx.attempt);
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
  description: 'ignores nothing but takes forever',
  payloadSchema: z.object({}),
  timeoutMs: 200,
  async run(_p, ctx) {
    await sleep(60_000, undefined, { signal: ctx.signal });
  },
};

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { JOB_PAYLOAD_LIMIT_BYTES: '1000' }, { handlers: [flaky, broken, stuck] });
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

const untilStatus = (id: string, statuses: string[], timeoutMs = 15_000) =>
  waitFor(`job ${id} to reach ${statuses.join('/')}`, async () => {
    const { body } = await server.api('GET', `/v1/jobs/${id}`);
    return statuses.includes(body.status) ? body : undefined;
  }, timeoutMs);

async function countJobs(): Promise<number> {
  const { body } = await server.api('GET', '/v1/jobs/stats?since=7d');
  return body.total;
}

describe('jobs API with the in-process runner', () => {
  it('runs a noop job to succeeded, stamping each transition', async () => {
    const res = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { hello: 'world' } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ type: 'noop', status: 'queued', attempts: 0, payload: { hello: 'world' } });
    const done = await untilStatus(res.body.job_id, ['succeeded']);
    expect(done.result).toEqual({ ok: true });
    expect(done.attempts).toBe(1);
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(Date.parse(done.created_at));
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.started_at));
    expect(done.locked_by).toBeNull();
  });

  it('returns the first job for a repeated idempotency key and refuses a different request with it', async () => {
    const first = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { n: 1 }, idempotency_key: 'same-key' });
    const again = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { n: 1 }, idempotency_key: 'same-key' });
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.job_id).toBe(first.body.job_id);
    const other = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { n: 2 }, idempotency_key: 'same-key' });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toContain('already used for a different request');
  });

  it('rejects bad input with a 4xx naming the problem, storing nothing', async () => {
    const before = await countJobs();
    const unknown = await server.api('POST', '/v1/jobs', { type: 'nope' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'VALIDATION' });
    expect(unknown.body.error.message).toMatch(/unknown job type "nope".*noop/);

    const big = await server.api('POST', '/v1/jobs', { type: 'noop', payload: { blob: 'x'.repeat(2000) } });
    expect(big.status).toBe(413);
    expect(big.body.error.message).toMatch(/over the limit of 1000 bytes/);

    const malformed = await server.api('POST', '/v1/jobs', '{"type": "noop",');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toMatch(/^body: /);

    const wrongType = await server.api('POST', '/v1/jobs', { type: 'noop', max_attempts: 'three' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toContain('max_attempts');

    const badPayload = await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: -5 } });
    expect(badPayload.status).toBe(400);
    expect(badPayload.body.error.message).toContain('payload.ms');

    const badRunAt = await server.api('POST', '/v1/jobs', { type: 'noop', run_at: 'tomorrow-ish' });
    expect(badRunAt.status).toBe(400);
    expect(badRunAt.body.error.message).toContain('run_at');

    expect(await countJobs()).toBe(before);
  });

  it('answers unknown routes and ids with JSON 404/400', async () => {
    const route = await server.api('GET', '/v1/nothing-here');
    expect(route.status).toBe(404);
    expect(route.body.error).toMatchObject({ code: 'NOT_FOUND', message: 'no route for GET /v1/nothing-here' });
    const missing = await server.api('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    const notUuid = await server.api('GET', '/v1/jobs/not-a-uuid');
    expect(notUuid.status).toBe(400);
    expect(notUuid.body.error.message).toContain('not a job id');
  });

  it('retries a failing job with backoff until it succeeds', async () => {
    const { body } = await server.api('POST', '/v1/jobs', { type: 'flaky', payload: { fail_times: 2 }, max_attempts: 3 });
    const done = await untilStatus(body.job_id, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(3);
    expect(done.result).toEqual({ attempt: 3 });
    expect(done.progress).toEqual({ done: 1 });
  });

  it('fails a job once attempts run out, and retry via the API queues it again', async () => {
    const { body } = await server.api('POST', '/v1/jobs', { type: 'flaky', payload: { fail_times: 5 }, max_attempts: 2 });
    const failed = await untilStatus(body.job_id, ['failed']);
    expect(failed.attempts).toBe(2);
    expect(failed.error_message).toBe('attempt 2 of 2: planned failure on attempt 2');

    const retried = await server.api('POST', `/v1/jobs/${body.job_id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'queued', attempts: 0 });
    await untilStatus(body.job_id, ['failed']);

    const notRetryable = await server.api('POST', '/v1/jobs', { type: 'noop' });
    await untilStatus(notRetryable.body.job_id, ['succeeded']);
    const refused = await server.api('POST', `/v1/jobs/${notRetryable.body.job_id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain('only failed or cancelled jobs can be retried');
  });

  it('fails an unrecoverable error at once and a timed-out attempt with a message', async () => {
    const broke = await server.api('POST', '/v1/jobs', { type: 'broken', max_attempts: 5 });
    const b = await untilStatus(broke.body.job_id, ['failed']);
    expect(b.attempts).toBe(1);
    expect(b.error_message).toContain('input can never work');

    const slow = await server.api('POST', '/v1/jobs', { type: 'stuck', max_attempts: 1 });
    const s = await untilStatus(slow.body.job_id, ['failed']);
    expect(s.error_message).toBe('attempt 1 of 1: timed out after 200 ms');
  });

  it('cancels a queued job at once and a running sleep job through its signal', async () => {
    const later = await server.api('POST', '/v1/jobs', { type: 'noop', run_at: new Date(Date.now() + 3_600_000).toISOString() });
    const cancelled = await server.api('POST', `/v1/jobs/${later.body.job_id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body.status).toBe('cancelled');

    const long = await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 } });
    await untilStatus(long.body.job_id, ['running']);
    const asked = await server.api('POST', `/v1/jobs/${long.body.job_id}/cancel`);
    expect(asked.status).toBe(202);
    expect(asked.body.cancel_requested_at).not.toBeNull();
    const done = await untilStatus(long.body.job_id, ['cancelled'], 5000);
    expect(done.error_message).toMatch(/^cancelled/);

    const again = await server.api('POST', `/v1/jobs/${long.body.job_id}/cancel`);
    expect(again.status).toBe(409);
  });

  it('runs higher priority first', async () => {
    // Delay both so they become due together, then compare start order.
    const runAt = new Date(Date.now() + 600).toISOString();
    const low = await server.api('POST', '/v1/jobs', { type: 'noop', priority: 0, run_at: runAt });
    const high = await server.api('POST', '/v1/jobs', { type: 'noop', priority: 10, run_at: runAt });
    const l = await untilStatus(low.body.job_id, ['succeeded']);
    const h = await untilStatus(high.body.job_id, ['succeeded']);
    expect(Date.parse(h.started_at)).toBeLessThanOrEqual(Date.parse(l.started_at));
  });

  it('lists with filters and cursor pagination, and gives the status distribution', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 1 } })).body.job_id);
    for (const id of ids) await untilStatus(id, ['succeeded']);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/jobs?type=sleep&status=succeeded&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const { status, body } = await server.api('GET', q);
      expect(status).toBe(200);
      for (const j of body.jobs) {
        expect(j.type).toBe('sleep');
        seen.push(j.job_id);
      }
      cursor = body.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    expect(seen).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    const badStatus = await server.api('GET', '/v1/jobs?status=done');
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.message).toContain('"done" is not a status');
    const badSince = await server.api('GET', '/v1/jobs?since=yesterday');
    expect(badSince.status).toBe(400);
    const badCursor = await server.api('GET', '/v1/jobs?cursor=zzz');
    expect(badCursor.status).toBe(400);

    const stats = await server.api('GET', '/v1/jobs/stats?since=1h');
    expect(stats.status).toBe(200);
    expect(stats.body.counts.succeeded).toBeGreaterThanOrEqual(5);
    expect(Object.keys(stats.body.counts).sort()).toEqual(['cancelled', 'failed', 'queued', 'running', 'succeeded']);
  });

  it('serves the OpenAPI document and UI at /docs', async () => {
    const spec = await server.api('GET', '/docs/json');
    expect(spec.status).toBe(200);
    expect(Object.keys(spec.body.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel', '/health/detailed']));
    expect(Object.keys(spec.body.paths).some((p: string) => p.startsWith('/local'))).toBe(false);
    const ui = await fetch(`${server.url}/docs/`, { signal: AbortSignal.timeout(5000) });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });
});
