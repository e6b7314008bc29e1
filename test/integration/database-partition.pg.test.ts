import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/processes.ts';
import { acceptedJobIds, drive, expectBoundedAnswers, partitionWindow, summarize } from '../helpers/request-driver.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The bound configured for the server, and the slack the assertions allow on top of it for a loaded
// 2-core machine: the issue asks for answers within the bound, not for a precise timing.
const BOUND_MS = 1000;
const SLACK_MS = 2500;
const RATE_PER_S = 20;
const PARTITION_MS = 8000;

let db: TestDatabase;
let proxy: TcpProxy;
let server: TestServer;
let viaProxy: string;

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  proxy = await startTcpProxy(5432);
  const url = new URL(db.databaseUrl!);
  url.port = String(proxy.port);
  viaProxy = url.toString();
  server = await startTestServer(db, { DATABASE_URL: viaProxy, DB_UNAVAILABLE_ANSWER_MS: String(BOUND_MS), HEALTH_PROBE_TIMEOUT_MS: '1000' });
});

afterAll(async () => {
  proxy?.resume();
  await server?.close(1000);
  await proxy?.close();
  await db?.cleanup();
});

describe('a database partition (packets held, connections open)', () => {
  it(
    'answers every request within DB_UNAVAILABLE_ANSWER_MS with 503 UNAVAILABLE and an error_id, keeps in-flight work bounded, and loses no accepted job',
    async () => {
      const first = await server.api('POST', '/v1/jobs', { type: 'noop' });
      expect(first.status).toBe(202);

      const { outcomes, maxInFlight } = await drive({
        baseUrl: server.url,
        knownJobId: first.body.job_id,
        ratePerSecond: RATE_PER_S,
        durationMs: 1500 + PARTITION_MS + 2000,
        onTick: partitionWindow(proxy, 1500, PARTITION_MS),
      });
      proxy.resume();
      const summary = summarize(outcomes, maxInFlight);

      expectBoundedAnswers(outcomes, maxInFlight, BOUND_MS + SLACK_MS, server.logs);
      // The partition was seen: requests were refused, not served from somewhere else.
      expect(outcomes.filter((o) => o.status === 503).length, summary).toBeGreaterThan(0);
      // Requests pile up only as long as one bounded wait: the rate times the bound, with slack.
      expect(maxInFlight, summary).toBeLessThanOrEqual(Math.ceil((RATE_PER_S * (BOUND_MS + SLACK_MS)) / 1000));

      // Every submit answered 202 is stored and finishes once the database is back.
      const accepted = acceptedJobIds(outcomes);
      expect(accepted.length, summary).toBeGreaterThan(0);
      const admin = new pg.Client({ connectionString: db.databaseUrl });
      await admin.connect();
      try {
        await waitFor(
          'every accepted job to succeed',
          async () => {
            const { rows } = await admin.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = ANY($1::uuid[])', [accepted]);
            return rows.length === accepted.length && rows.every((r) => r.status === 'succeeded');
          },
          30_000,
          200,
        );
      } finally {
        await admin.end();
      }

      // And the service answers normally again.
      await waitFor('the API to answer again', async () => (await server.api('GET', '/v1/jobs?limit=1')).status === 200, 15_000, 200);
    },
    90_000,
  );

  it(
    'finds the connections a partition left silent, the LISTEN one included, and wakes on NOTIFY again without polling',
    async () => {
      // Polling once a minute: a job inserted by another writer can only start promptly through NOTIFY.
      const quiet = await startTestServer(db, { DATABASE_URL: viaProxy, DB_UNAVAILABLE_ANSWER_MS: String(BOUND_MS), JOB_POLL_MS: '60000' });
      const admin = new pg.Client({ connectionString: db.databaseUrl });
      await admin.connect();
      const insertJob = async () => {
        const id = randomUUID();
        await admin.query(`INSERT INTO jobs (job_id, type) VALUES ($1, 'noop')`, [id]);
        return id;
      };
      const statusOf = async (id: string) => (await admin.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = $1', [id])).rows[0]?.status;
      try {
        await sleep(300);
        const before = await insertJob();
        await waitFor('a job inserted with SQL to start through NOTIFY', async () => (await statusOf(before)) === 'succeeded', 15_000, 100);

        // Longer than the LISTEN heartbeat's period and bound; then every connection open now stays
        // silent for good, with no reset, while new ones reach the database.
        proxy.pause();
        await sleep(6500);
        proxy.resumeNewOnly();

        for (let i = 0; i < 5; i++) {
          const started = Date.now();
          const res = await fetch(`${quiet.url}/v1/jobs?limit=1`, { signal: AbortSignal.timeout(15_000) }).catch((err: Error) => err);
          const ms = Date.now() - started;
          if (res instanceof Error) throw new Error(`GET /v1/jobs got no answer within ${ms} ms: ${res.message}`);
          expect([200, 503], `GET /v1/jobs answered ${res.status}`).toContain(res.status);
          expect(ms, `GET /v1/jobs answered after ${ms} ms`).toBeLessThan(BOUND_MS + SLACK_MS);
        }
        await waitFor('the API to answer 200 again', async () => (await quiet.api('GET', '/v1/jobs?limit=1')).status === 200, 15_000, 200);
        // Notifications sent before the LISTEN connection is back are missed (the poll would find
        // those jobs): insert until one starts through a wake-up, which needs a live LISTEN.
        await waitFor(
          'a job inserted with SQL to start through NOTIFY after the partition',
          async () => {
            const id = await insertJob();
            await sleep(1000);
            return (await statusOf(id)) === 'succeeded';
          },
          30_000,
          0,
        );
      } finally {
        await admin.end();
        // Bounded: a pool stuck on silent connections (the failure this test looks for) never closes.
        await Promise.race([quiet.close(1000), sleep(10_000)]);
      }
    },
    90_000,
  );

  it(
    'shuts down within a bounded time while the database is silent',
    async () => {
      const doomed = await startTestServer(db, { DATABASE_URL: viaProxy, DB_UNAVAILABLE_ANSWER_MS: String(BOUND_MS) });
      expect((await doomed.api('GET', '/v1/jobs?limit=1')).status).toBe(200);
      proxy.pause();
      try {
        const started = Date.now();
        const closed = await Promise.race([doomed.close(1000).then(() => 'closed'), sleep(20_000).then(() => 'still closing')]);
        expect(closed, `after ${Date.now() - started} ms`).toBe('closed');
      } finally {
        proxy.resume();
      }
    },
    60_000,
  );
});
