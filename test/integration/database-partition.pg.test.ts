import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/processes.ts';
import { acceptedJobIds, drive, expectBoundedAnswers, summarize } from '../helpers/request-driver.ts';
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

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  proxy = await startTcpProxy(5432);
  const url = new URL(db.databaseUrl!);
  url.port = String(proxy.port);
  server = await startTestServer(db, { DATABASE_URL: url.toString(), DB_UNAVAILABLE_ANSWER_MS: String(BOUND_MS), HEALTH_PROBE_TIMEOUT_MS: '1000' });
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

      let paused = false;
      let resumed = false;
      const { outcomes, maxInFlight } = await drive({
        baseUrl: server.url,
        knownJobId: first.body.job_id,
        ratePerSecond: RATE_PER_S,
        durationMs: 1500 + PARTITION_MS + 2000,
        onTick(elapsed) {
          if (!paused && elapsed >= 1500) {
            paused = true;
            proxy.pause();
          }
          if (!resumed && elapsed >= 1500 + PARTITION_MS) {
            resumed = true;
            proxy.resume();
          }
        },
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
});
