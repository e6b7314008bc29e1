import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// How runners on PostgreSQL hear of new jobs now that the API's submits keep the insert trigger
// silent: a row from any other writer still notifies, and a second API process on the same
// database is told by the first. Every runner here polls only once a minute, so a prompt start
// can only come from a wake-up.

const NO_POLL = { JOB_POLL_MS: '60000' };

/** A handler of type `probe` that records which server ran each job. */
function probe(ranBy: Map<string, string>, server: string): JobHandler<Record<string, unknown>> {
  return {
    type: 'probe',
    description: 'records which server ran it',
    payloadSchema: z.record(z.string(), z.unknown()),
    async run(_payload, ctx) {
      ranBy.set(ctx.jobId, server);
      return { ran_by: server };
    },
  };
}

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  client = new pg.Client({ connectionString: db.databaseUrl });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.cleanup();
});

const statusOf = async (id: string) => (await client.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = $1', [id])).rows[0]?.status;

/** A client LISTENing on evalops_jobs, and the payloads it has heard so far. */
async function listenForJobs(): Promise<{ listener: pg.Client; heard: string[] }> {
  const listener = new pg.Client({ connectionString: db.databaseUrl });
  const heard: string[] = [];
  listener.on('notification', (n) => n.channel === 'evalops_jobs' && heard.push(n.payload ?? ''));
  await listener.connect();
  await listener.query('LISTEN evalops_jobs');
  return { listener, heard };
}

describe('wake-ups on PostgreSQL', () => {
  it('a row inserted with plain SQL from another connection still wakes the runner', async () => {
    const server = await startTestServer(db, NO_POLL);
    try {
      await sleep(300);
      for (let i = 0; i < 3; i++) {
        const id = randomUUID();
        await client.query(`INSERT INTO jobs (job_id, type) VALUES ($1, 'noop')`, [id]);
        await waitFor(`job ${id} inserted with psql-like SQL to succeed`, async () => (await statusOf(id)) === 'succeeded', 15_000);
      }
      // An operator's retry by hand (UPDATE back to queued) too.
      const { rows } = await client.query<{ job_id: string }>(`UPDATE jobs SET status = 'queued', run_at = now() WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'succeeded' LIMIT 1) RETURNING job_id`);
      const again = rows[0]!.job_id;
      await waitFor(`job ${again} queued again by hand to succeed`, async () => (await statusOf(again)) === 'succeeded', 15_000);
    } finally {
      await server.close(2000);
    }
  });

  it("the API's inserts keep the trigger silent and notify with their runner's id (which that runner ignores)", async () => {
    const { listener, heard } = await listenForJobs();
    const server = await startTestServer(db, NO_POLL);
    try {
      await sleep(300);
      heard.length = 0;
      const answers = await Promise.all(Array.from({ length: 5 }, () => server.api('POST', '/v1/jobs', { type: 'noop' })));
      expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
      await waitFor('a NOTIFY from the submits', async () => heard.length > 0, 10_000);
      await sleep(200);
      // The trigger's own NOTIFY has an empty payload: none was sent for these rows.
      expect(heard.every((p) => p.startsWith('inprocess:'))).toBe(true);
      for (const a of answers) await waitFor(`job ${a.body.job_id} to succeed`, async () => (await statusOf(a.body.job_id)) === 'succeeded', 15_000);
    } finally {
      await server.close(2000);
      await listener.end();
    }
  });

  it('a batch submit wakes its runner directly and tells other processes with one NOTIFY for the whole batch', async () => {
    const { listener, heard } = await listenForJobs();
    const server = await startTestServer(db, NO_POLL);
    try {
      await sleep(300);
      heard.length = 0;
      const res = await server.api('POST', '/v1/jobs/batch', { jobs: Array.from({ length: 100 }, () => ({ type: 'noop' })) });
      expect(res.status).toBe(202);
      // The runner polls once a minute: these finish promptly only because dispatch() woke it.
      for (const job of res.body.jobs) await waitFor(`job ${job.job_id} to succeed`, async () => (await statusOf(job.job_id)) === 'succeeded', 15_000);
      await sleep(200);
      expect(heard).toHaveLength(1);
      expect(heard[0]).toMatch(/^inprocess:/);
    } finally {
      await server.close(2000);
      await listener.end();
    }
  });

  it('a second API process on the same database starts jobs submitted to the first, promptly', async () => {
    const ranBy = new Map<string, string>();
    // The first runs one job at a time and is kept busy, so only the second can run what it accepts.
    const first: TestServer = await startTestServer(db, { ...NO_POLL, JOB_CONCURRENCY: '1' }, { handlers: [probe(ranBy, 'first')] });
    let second: TestServer | undefined;
    try {
      const busy = await first.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 } });
      await waitFor('the first server to run its sleep job', async () => (await statusOf(busy.body.job_id)) === 'running', 15_000);
      second = await startTestServer(db, NO_POLL, { handlers: [probe(ranBy, 'second')] });
      await sleep(300);
      for (let i = 0; i < 3; i++) {
        const res = await first.api('POST', '/v1/jobs', { type: 'probe' });
        expect(res.status).toBe(202);
        await waitFor(`probe job ${res.body.job_id} to succeed`, async () => (await statusOf(res.body.job_id)) === 'succeeded', 15_000);
        expect(ranBy.get(res.body.job_id)).toBe('second');
      }
      expect((await first.api('POST', `/v1/jobs/${busy.body.job_id}/cancel`)).status).toBe(202);
    } finally {
      await second?.close(2000);
      await first.close(2000);
    }
  });
});
