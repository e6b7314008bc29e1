import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestCounter } from '../../src/obs/request-counter.ts';
import { writeRequestCounts } from '../../src/obs/request-counter-flush.ts';
import { runCli } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The measured SLIs (issue 6, item 2): request counts flushed by the API survive a restart and add
 * up across instances; the job and evaluation SLIs come from their tables over hand-computed
 * windows; `GET /v1/slo` and `evalops slo` show the same figures and say "insufficient data" for a
 * window with too few events.
 */

let db: TestDatabase;
let server: TestServer | undefined;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'evalops-slo-'));

// A route that always fails, so the test controls the 5xx answers exactly.
const failing: FastifyPluginAsync = async (app) => {
  app.get('/v1/test/fail', async () => {
    throw new Error('injected failure');
  });
};

// Flushed only at shutdown (and by the test): nothing lands in the table behind the test's back.
// Load shedding off: on a busy machine a shed 503 would change the counts this file checks exactly.
const env = { SLI_FLUSH_MS: '60000', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' };

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

describe('the availability SLI from request_counts', () => {
  it('survives a restart and adds up the counts of every instance', async () => {
    server = await startTestServer(db, env, { routes: failing });
    for (let i = 0; i < 30; i++) expect((await server.api('GET', '/v1/jobs')).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await server.api('GET', '/v1/test/fail')).status).toBe(500);
    await server.close(2000); // writes what it counted
    server = await startTestServer(db, env, { routes: failing });

    // A second API instance elsewhere: 20 good and 5 answered 503, in its own rows.
    const other = new RequestCounter({ instanceId: 'other-host:4242:abcdef' });
    for (let i = 0; i < 20; i++) other.record('/v1/jobs', 200, 4);
    for (let i = 0; i < 5; i++) other.record('/v1/jobs/:id', 503, 1500);
    await writeRequestCounts(server.database.db, other.instanceId, other.drain());

    const rows = await server.database.db
      .selectFrom('request_counts')
      .select(['instance_id', 'route_class', 'status_code', (eb) => eb.fn.sum<number>('requests').as('requests')])
      .groupBy(['instance_id', 'route_class', 'status_code'])
      .orderBy('instance_id')
      .orderBy('route_class')
      .orderBy('status_code')
      .execute();
    const byInstance = new Map<string, number>();
    for (const r of rows) byInstance.set(r.instance_id, (byInstance.get(r.instance_id) ?? 0) + Number(r.requests));
    expect([...byInstance.values()].sort((a, b) => a - b)).toEqual([25, 40]);
    expect(rows.filter((r) => r.instance_id !== other.instanceId).map((r) => [r.route_class, r.status_code, Number(r.requests)])).toEqual([
      ['jobs', 200, 30],
      ['test', 500, 10],
    ]);

    // The first request to the restarted server: nothing of its own is counted yet.
    const res = await server.api('GET', '/v1/slo');
    expect(res.status).toBe(200);
    const api = res.body.slos.find((s: { name: string }) => s.name === 'api-availability');
    expect(api).toMatchObject({ sli: 'api_availability', objective_percent: 99.9, window: '28d', runbook_section: 'A', runbook_url: 'docs/runbook.md#a-api-availability-drop' });
    // 65 requests, 15 answered 5xx: 50 good.
    expect(api.report.full).toMatchObject({ status: 'ok', good: 50, bad: 15, total: 65 });
    expect(api.report.windows.find((w: { window: string }) => w.window === '5m')).toMatchObject({ good: 50, total: 65 });
    expect(api.report.full.errorRatio).toBeCloseTo(15 / 65, 12);
    // 15 bad where 0.065 were allowed: the budget is overspent 230 times over.
    expect(api.report.budget.remaining).toBeCloseTo(1 - 15 / (65 * 0.001), 6);
    expect(api.report.firing).toBe('page');
  });

  it('counts every request once when a process writes the same minute in several parts', async () => {
    const counter = new RequestCounter({ instanceId: 'parts:1:000000' });
    counter.record('/v1/prompts', 200, 3);
    counter.record('/v1/prompts', 200, 30);
    await writeRequestCounts(server!.database.db, counter.instanceId, counter.drain());
    counter.record('/v1/prompts', 200, 300);
    await writeRequestCounts(server!.database.db, counter.instanceId, counter.drain());
    const row = await server!.database.db.selectFrom('request_counts').selectAll().where('instance_id', '=', counter.instanceId).executeTakeFirstOrThrow();
    expect(row.requests).toBe(3);
    expect(row.duration_ms_sum).toBeCloseTo(333, 6);
    // ≤ 5 ms, ≤ 50 ms, ≤ 500 ms: one each, added element by element.
    expect(row.duration_buckets).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
    await server!.database.db.deleteFrom('request_counts').where('instance_id', '=', counter.instanceId).execute();
  });
});

describe('the job and evaluation SLIs from their tables', () => {
  it('counts outcomes by when they ended over each window, and says when there is too little data', async () => {
    const d = server!.database.db;
    let n = 0;
    const job = (status: 'succeeded' | 'failed' | 'cancelled' | 'queued', finishedMinutesAgo: number | null) => ({
      job_id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
      type: 'noop',
      status,
      payload: '{}',
      max_attempts: 1,
      // Far in the future: the in-process runner never takes the queued ones.
      run_at: new Date(Date.now() + 86_400_000),
      error_message: status === 'failed' ? 'attempt 1 of 1: injected' : null,
      created_at: minutesAgo(finishedMinutesAgo ?? 1),
      finished_at: finishedMinutesAgo === null ? null : minutesAgo(finishedMinutesAgo),
    });
    const rows = [
      ...Array.from({ length: 8 }, () => job('succeeded', 2)),
      ...Array.from({ length: 3 }, () => job('failed', 2)),
      job('cancelled', 120),
      ...Array.from({ length: 5 }, () => job('succeeded', 2 * 1440)),
      ...Array.from({ length: 2 }, () => job('failed', 10 * 1440)),
      job('failed', 40 * 1440), // outside the 28-day window
      job('queued', null),
      job('queued', null), // not ended: not counted
    ];
    await d.insertInto('jobs').values(rows).execute();
    const spec = JSON.stringify({ prompt_version: 'p@1' });
    await d
      .insertInto('evaluation_runs')
      .values(
        [1, 2].map((i) => ({
          run_id: `00000000-0000-4000-9000-${String(i).padStart(12, '0')}`,
          status: 'failed' as const,
          prompt_version: 'p@1',
          data_snapshot_id: `sha256:${'0'.repeat(64)}`,
          provider_type: 'echo',
          model: 'echo',
          mode: 'live' as const,
          seed: 1,
          spec,
          error_message: 'injected',
          finished_at: minutesAgo(1),
        })),
      )
      .execute();

    const cli = await runCli(['slo', '--json'], db.env);
    expect(cli.code, cli.stderr).toBe(0);
    const report = JSON.parse(cli.stdout);
    expect(report.source).toBe('built-in defaults');
    const jobs = report.slos.find((s: { name: string }) => s.name === 'job-success').report;
    const w = (name: string) => jobs.windows.find((x: { window: string }) => x.window === name);
    // Hand-computed: 5m/30m/1h see the 11 of two minutes ago; 6h adds the cancelled one; 3d adds the
    // 5 of two days ago; 28d adds the 2 failures of ten days ago (not the one of forty).
    expect([w('5m'), w('30m'), w('1h'), w('6h'), w('3d'), jobs.full].map((x) => [x.good, x.total])).toEqual([
      [8, 11],
      [8, 11],
      [8, 11],
      [8, 12],
      [13, 17],
      [13, 19],
    ]);
    expect(w('1h').burnRate).toBeCloseTo(3 / 11 / 0.01, 10);
    // 27% over both 1h and 5m is above 14.4 × 1%: the page alert would fire.
    expect(jobs.alerts.find((a: { name: string }) => a.name === 'page-1h-5m').status).toBe('firing');
    expect(jobs.firing).toBe('page');

    const evals = report.slos.find((s: { name: string }) => s.name === 'evaluation-run-success').report;
    expect(evals.full).toMatchObject({ status: 'insufficient_data', good: 0, bad: 2, total: 2, sli: null, errorRatio: null, burnRate: null });
    expect(evals.firing).toBe('none');

    // The same figures through the API.
    const viaUrl = await runCli(['slo', '--json', '--url', server!.url], {});
    expect(viaUrl.code, viaUrl.stderr).toBe(0);
    expect(JSON.parse(viaUrl.stdout).slos.find((s: { name: string }) => s.name === 'job-success').report.windows).toEqual(jobs.windows);

    const text = await runCli(['slo'], db.env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('job-success: objective 99% over 28d, PAGE alert firing');
    expect(text.stdout).toContain('  1h    SLI  72.727%  bad        3 of 11         burn 27.3x');
    expect(text.stdout).toContain('  5m    insufficient data: 2 events, fewer than 10');
    expect(text.stdout).toMatch(/job-success: PAGE alert would fire now; follow docs\/runbook\.md#b-job-success-rate-drop/);

    const viaApi = await server!.api('GET', '/v1/slo?format=text');
    expect(viaApi.status).toBe(200);
    expect(viaApi.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(viaApi.body).toContain('evaluation-run-success: objective 99% over 28d, no alert firing');
    expect(viaApi.body).toContain('  error budget left: insufficient data (2 events in 28d, fewer than 10)');
  });
});

describe('SLO definitions from SLO_CONFIG', () => {
  it('generates the Prometheus rules from the configured file', async () => {
    const file = path.join(scratch, 'slo.yaml');
    writeFileSync(file, 'version: 1\nslos:\n  - name: job-success\n    description: Jobs that succeed.\n    objective: 95\n    window: 7d\n    sli: { kind: job_success }\n    runbook: B\n');
    const rules = await runCli(['slo', 'rules'], { SLO_CONFIG: file });
    expect(rules.code, rules.stderr).toBe(0);
    expect(rules.stdout).toContain(`# Generated by \`evalops slo rules\` from ${file}.`);
    expect(rules.stdout).toContain('name: evalops-slo-job-success');
    expect(rules.stdout).toContain('record: slo:sli_error:ratio_rate7d');
    expect(rules.stdout).not.toContain('api-availability');
    const out = path.join(scratch, 'rules.yml');
    const written = await runCli(['slo', 'rules', '-o', out], {});
    expect(written.code, written.stderr).toBe(0);
    expect(written.stderr).toContain(`promtool check rules ${out}`);
  });

  it('refuses a file that does not validate, naming the file and the field, in the CLI and at serve', async () => {
    const bad = path.join(scratch, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nslos:\n  - name: job-success\n    description: x\n    objective: 100\n    window: 28d\n    sli: { kind: job_success }\n    runbook: B\n');
    const cli = await runCli(['slo', 'rules'], { SLO_CONFIG: bad });
    expect(cli.code).toBe(78);
    expect(cli.stderr).toContain(`SLO_CONFIG: ${bad}: slos[0].objective: must be a percentage above 0 and below 100`);
    const other = await createTestDatabase();
    try {
      await expect(startTestServer(other, { SLO_CONFIG: bad })).rejects.toThrow(/SLO_CONFIG: .*bad\.yaml: slos\[0\]\.objective/);
    } finally {
      await other.cleanup();
    }
  });
});

describe('the request_counts table keeps its shape on both backends', () => {
  it('sums duration buckets across rows with unnest', async () => {
    const { rows } = await sql<{ i: number; n: number }>`SELECT i::int AS i, sum(b)::int AS n FROM request_counts, unnest(duration_buckets) WITH ORDINALITY AS u(b, i) GROUP BY i ORDER BY i`.execute(server!.database.db);
    expect(rows).toHaveLength(12);
    expect(rows.reduce((a, r) => a + Number(r.n), 0)).toBe(65);
  });
});
