import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestCounter } from '../../src/obs/request-counter.ts';
import { writeRequestCounts } from '../../src/obs/request-counter-flush.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * `GET /v1/slo/requests`: the request rate and 5xx ratio over time the dashboard draws, read from
 * `request_counts` (summed over instances, route classes and statuses), in buckets aligned on whole
 * minutes, empty ones included.
 */

let db: TestDatabase;
let server: TestServer;

// The server writes its own counts once a minute at most: the minutes the test checks hold only what
// it writes there.
const env = { SLI_FLUSH_MS: '60000' };

const MINUTE = 60_000;
/** Start of the minute `m` minutes ago. */
const minuteAgo = (m: number) => Math.floor((Date.now() - m * MINUTE) / MINUTE) * MINUTE;

interface Bucket {
  time: string;
  requests: number;
  errors_5xx: number;
  error_ratio: number | null;
}

/** Counts written as another API process would: `good` 200s and `bad` 503s in the minute starting at `at`. */
async function writeCounts(instanceId: string, at: number, good: number, bad: number, route = '/v1/jobs'): Promise<void> {
  const counter = new RequestCounter({ instanceId, now: () => at + 1000 });
  for (let i = 0; i < good; i++) counter.record(route, 200, 3);
  for (let i = 0; i < bad; i++) counter.record('/v1/jobs/:id', 503, 40);
  await writeRequestCounts(server.database.db, counter.instanceId, counter.drain());
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, env);
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

describe('GET /v1/slo/requests', () => {
  const three = minuteAgo(3);
  const ten = minuteAgo(10);
  const long = minuteAgo(130);

  beforeAll(async () => {
    await writeCounts('host-a:1:aaaaaa', three, 20, 5);
    await writeCounts('host-b:2:bbbbbb', three, 10, 0, '/v1/evaluations');
    await writeCounts('host-a:1:aaaaaa', ten, 7, 0);
    await writeCounts('host-b:2:bbbbbb', long, 0, 4);
  });

  it('sums every instance per minute over the last hour, one bucket per minute, empty ones at 0', async () => {
    const res = await server.api('GET', '/v1/slo/requests?since=1h');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as { since: string; until: string; step_seconds: number; buckets: Bucket[]; totals: Record<string, number | null> };
    expect(body.step_seconds).toBe(60);
    expect(body.buckets).toHaveLength(60);
    const times = body.buckets.map((b) => Date.parse(b.time));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(MINUTE);
    expect(times[0]! % MINUTE).toBe(0);
    expect(body.since).toBe(body.buckets[0]!.time);
    // The last bucket holds now.
    expect(Date.parse(body.until)).toBeGreaterThanOrEqual(times.at(-1)!);
    expect(Date.parse(body.until)).toBeLessThan(times.at(-1)! + MINUTE);

    const at = (ms: number) => body.buckets.find((b) => Date.parse(b.time) === ms);
    expect(at(three)).toEqual({ time: new Date(three).toISOString(), requests: 35, errors_5xx: 5, error_ratio: 5 / 35 });
    expect(at(ten)).toEqual({ time: new Date(ten).toISOString(), requests: 7, errors_5xx: 0, error_ratio: 0 });
    // Two hours ago is outside the window; a minute with no row reads 0 with no ratio.
    expect(at(long)).toBeUndefined();
    expect(at(minuteAgo(20))).toMatchObject({ requests: 0, errors_5xx: 0, error_ratio: null });
    // The totals add up the buckets; the server's own answers (none of them 5xx) are written at most
    // once a minute, so only the 5xx count is exact whatever the timing.
    const sum = body.buckets.reduce((n, b) => n + b.requests, 0);
    expect(body.totals).toEqual({ requests: sum, errors_5xx: 5, error_ratio: 5 / sum });
    expect(sum).toBeGreaterThanOrEqual(42);
  });

  it('adds minutes into longer steps, chosen or by default', async () => {
    const res = await server.api('GET', '/v1/slo/requests?since=6h&step=5m');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.step_seconds).toBe(300);
    expect(res.body.buckets).toHaveLength(72);
    const bucketOf = (ms: number) => (res.body.buckets as Bucket[]).find((b) => Date.parse(b.time) === Math.floor(ms / 300_000) * 300_000);
    expect(bucketOf(long)).toMatchObject({ requests: 4, errors_5xx: 4, error_ratio: 1 });
    expect(res.body.totals.errors_5xx).toBe(9);
    expect(res.body.totals.requests).toBeGreaterThanOrEqual(46);

    // A day by default: the smallest whole-minute step within 360 buckets.
    const day = await server.api('GET', '/v1/slo/requests?since=1d');
    expect(day.status).toBe(200);
    expect(day.body.step_seconds).toBe(240);
    expect(day.body.buckets).toHaveLength(360);
    expect(day.body.totals.errors_5xx).toBe(9);
  });

  it('refuses windows and steps it cannot serve, in words', async () => {
    const cases: Array<[string, RegExp]> = [
      ['since=soon', /since: "soon" is not a duration/],
      ['since=30s', /since: the window must be between 1m and 29d/],
      ['since=90d', /since: the window must be between 1m and 29d/],
      ['since=1h&step=30s', /step: must be a whole number of minutes/],
      ['since=1h&step=90s', /step: must be a whole number of minutes/],
      ['since=1h&step=2h', /step: must not be longer than the window/],
      ['since=7d&step=1m', /step: 10080 buckets is more than 1440/],
      ['since=9007199254740993d', /since: the window must be/],
    ];
    for (const [query, message] of cases) {
      const res = await server.api('GET', `/v1/slo/requests?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION');
      expect(res.body.error.message, query).toMatch(message);
    }
  });

  it('is documented in the OpenAPI document', async () => {
    const spec = await server.api('GET', '/docs/json');
    const op = spec.body.paths['/v1/slo/requests']?.get;
    expect(op).toBeDefined();
    expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['since', 'step']);
    expect(Object.keys(op.responses.default ?? op.responses['200'].content['application/json'].schema.properties).sort()).toEqual(['buckets', 'since', 'step_seconds', 'totals', 'until']);
  });
});
