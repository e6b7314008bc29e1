import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import { runCli, waitFor } from '../helpers/processes.ts';
import { deletePrefix, startTestWorker, TEST_REDIS_URL, testPrefix } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer } from '../helpers/test-server.ts';

/**
 * Runbook B: switching JOB_RUNNER_MODE in an emergency, and back. The one conditional claim
 * (queued -> running) makes both directions safe: every job runs exactly once, whoever runs it.
 */

// Counts every run of every job, in whichever runner of this process ran it.
const runs = new Map<string, number>();
const counted: JobHandler<Record<string, unknown>> = {
  type: 'counted',
  description: 'counts its runs',
  payloadSchema: z.record(z.string(), z.unknown()),
  async run(_p, ctx) {
    runs.set(ctx.jobId, (runs.get(ctx.jobId) ?? 0) + 1);
    return { ok: true };
  },
};

let db: TestDatabase;
let sqlClient: pg.Client;
const prefix = testPrefix('switch');
const queueEnv = { JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '300' };

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  sqlClient = new pg.Client({ connectionString: db.databaseUrl });
  await sqlClient.connect();
});

afterAll(async () => {
  await sqlClient?.end();
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

const rows = async (ids: string[]) =>
  (
    await sqlClient.query<{ job_id: string; status: string; attempts: number; updated_at: Date }>(
      `SELECT job_id, status, attempts, updated_at FROM jobs WHERE job_id = ANY($1::uuid[]) ORDER BY job_id`,
      [ids],
    )
  ).rows;

async function queueStats(): Promise<{ types: Array<{ type: string; bullmq: Record<string, number>; missing: number }> }> {
  const res = await runCli(['queue', 'stats', '--json'], { ...db.env, ...queueEnv });
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

describe('queue mode -> inprocess -> a worker started afterwards', () => {
  it('runs every job queued in queue mode exactly once, and the late worker runs none of them', async () => {
    // Queue mode with no worker running: the jobs wait in the table and in BullMQ.
    const queueApi = await startTestServer(db, queueEnv, { handlers: [counted] });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 30; i++) ids.push((await queueApi.api('POST', '/v1/jobs', { type: 'counted', payload: { i } })).body.job_id);
      const health = await queueApi.api('GET', '/health/detailed');
      expect(health.status).toBe(503);
      expect(health.body.components.background_tasks.message).toMatch(/no live worker while 30 job\(s\) are queued/);
    } finally {
      await queueApi.close(2000);
    }
    const held = (await queueStats()).types.find((t) => t.type === 'counted')!;
    expect(held.bullmq.waiting).toBe(30);

    // The emergency switch (runbook B.4): the API runs them itself from the table.
    const inprocessApi = await startTestServer(db, { JOB_RUNNER_MODE: 'inprocess' }, { handlers: [counted] });
    let finished: Awaited<ReturnType<typeof rows>>;
    try {
      await waitFor('all 30 to succeed in inprocess mode', async () => (await rows(ids)).every((r) => r.status === 'succeeded'), 30_000, 100);
      finished = await rows(ids);
    } finally {
      await inprocessApi.close(2000);
    }
    expect(finished.every((r) => r.attempts === 1)).toBe(true);

    // A worker started later receives the 30 stale deliveries and drops them all.
    const worker = await startTestWorker(db, queueEnv, { handlers: [counted], name: 'late', metricsPort: 0 });
    try {
      await waitFor('the late worker to drain BullMQ', async () => (await queueStats()).types.find((t) => t.type === 'counted')!.bullmq.waiting === 0, 30_000, 200);
      const metrics = await (await fetch(worker.metricsUrl!, { signal: AbortSignal.timeout(5000) })).text();
      expect(metrics).toMatch(/evalops_worker_deliveries_dropped_total\{reason="finished"\} 30/);
    } finally {
      await worker.close(2000);
    }
    expect(await rows(ids)).toEqual(finished);
    for (const id of ids) expect(runs.get(id)).toBe(1);
  });
});

describe('inprocess -> queue mode', () => {
  it('enqueues the rows left queued by the in-process runner, and runs each exactly once', async () => {
    // Jobs due in a few seconds, still queued when the in-process API stops.
    const inprocessApi = await startTestServer(db, { JOB_RUNNER_MODE: 'inprocess' }, { handlers: [counted] });
    const runAt = new Date(Date.now() + 3000).toISOString();
    const ids: string[] = [];
    try {
      for (let i = 0; i < 10; i++) ids.push((await inprocessApi.api('POST', '/v1/jobs', { type: 'counted', payload: { i } })).body.job_id);
      for (let i = 0; i < 10; i++) ids.push((await inprocessApi.api('POST', '/v1/jobs', { type: 'counted', payload: { later: i }, run_at: runAt })).body.job_id);
      await waitFor('the due ones to succeed', async () => (await rows(ids)).filter((r) => r.status === 'succeeded').length === 10, 20_000);
    } finally {
      await inprocessApi.close(2000);
    }
    expect((await rows(ids)).filter((r) => r.status === 'queued')).toHaveLength(10);

    const queueApi = await startTestServer(db, queueEnv, { handlers: [counted] });
    const worker = await startTestWorker(db, queueEnv, { handlers: [counted], name: 'switched', metricsPort: null });
    try {
      await waitFor('all 20 to succeed in queue mode', async () => (await rows(ids)).every((r) => r.status === 'succeeded'), 30_000, 100);
      expect(queueApi.logs.some((l) => l.msg === 'reconciler enqueued queued jobs BullMQ did not hold')).toBe(true);
    } finally {
      await worker.close(2000);
      await queueApi.close(2000);
    }
    expect((await rows(ids)).every((r) => r.attempts === 1)).toBe(true);
    for (const id of ids) expect(runs.get(id)).toBe(1);
  });
});
