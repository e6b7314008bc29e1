import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/processes.ts';
import { deletePrefix, startTestWorker, TEST_REDIS_URL, type TestWorker, testPrefix } from '../helpers/queue-test-support.ts';
import { acceptedJobIds, drive, expectBoundedAnswers, partitionWindow, summarize } from '../helpers/request-driver.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// Queue mode with the API's Redis behind a proxy that stops forwarding: submits are recorded in
// PostgreSQL and dispatched once Redis answers, so no request waits on Redis. The worker reaches
// Redis directly; only the API's side is partitioned.
const BOUND_MS = 1000;
const SLACK_MS = 2500;
const RATE_PER_S = 20;
const PARTITION_MS = 6000;
const prefix = testPrefix('redis_partition');

let db: TestDatabase;
let proxy: TcpProxy;
let server: TestServer;
let worker: TestWorker;

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  proxy = await startTcpProxy(Number(new URL(TEST_REDIS_URL).port || 6379), new URL(TEST_REDIS_URL).hostname);
  const queue = { JOB_RUNNER_MODE: 'queue', QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500', DB_UNAVAILABLE_ANSWER_MS: String(BOUND_MS) };
  server = await startTestServer(db, { ...queue, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, HEALTH_PROBE_TIMEOUT_MS: '1000' });
  worker = await startTestWorker(db, { ...queue, REDIS_URL: TEST_REDIS_URL }, { name: 'redis-partition', concurrency: 10, metricsPort: null });
});

afterAll(async () => {
  proxy?.resume();
  await server?.close(1000);
  await worker?.close(1000);
  await proxy?.close();
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

describe("a partition between the API and Redis (queue mode)", () => {
  it(
    'answers every request within DB_UNAVAILABLE_ANSWER_MS, keeps in-flight work bounded, and runs every accepted job once Redis answers',
    async () => {
      const first = await server.api('POST', '/v1/jobs', { type: 'noop' });
      expect(first.status).toBe(202);

      const { outcomes, maxInFlight } = await drive({
        baseUrl: server.url,
        knownJobId: first.body.job_id,
        ratePerSecond: RATE_PER_S,
        durationMs: 1500 + PARTITION_MS + 1500,
        onTick: partitionWindow(proxy, 1500, PARTITION_MS),
      });
      proxy.resume();
      const summary = summarize(outcomes, maxInFlight);

      expectBoundedAnswers(outcomes, maxInFlight, BOUND_MS + SLACK_MS, server.logs);
      expect(maxInFlight, summary).toBeLessThanOrEqual(Math.ceil((RATE_PER_S * (BOUND_MS + SLACK_MS)) / 1000));
      // PostgreSQL is the record: a Redis partition refuses no submit.
      const submits = outcomes.filter((o) => o.kind === 'submit' || o.kind === 'batch');
      expect(submits.filter((o) => o.status !== 202).map((o) => o.status), summary).toEqual([]);

      const accepted = acceptedJobIds(outcomes);
      const admin = new pg.Client({ connectionString: db.databaseUrl });
      await admin.connect();
      try {
        await waitFor(
          'every accepted job to succeed',
          async () => {
            const { rows } = await admin.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = ANY($1::uuid[])', [accepted]);
            return rows.length === accepted.length && rows.every((r) => r.status === 'succeeded');
          },
          45_000,
          250,
        );
      } finally {
        await admin.end();
      }
    },
    120_000,
  );
});
