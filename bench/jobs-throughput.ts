import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import autocannon from 'autocannon';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { migrateUp } from '../src/db/migrator.ts';
import { cpuWindow } from './support/cpu.ts';
import { WaitSampler } from './support/pg-waits.ts';
import { readOptions } from './support/options.ts';
import { benchPool, createBenchDatabase } from './support/postgres.ts';
import { checkBuild, type ChildServer, JsonClient, sleep, startEvalops, tempDir } from './support/processes.ts';
import { baselineTableDdl, runRawQueue, type SqlClient } from './support/raw-sql-queue.ts';
import { fmt, median, note, percentile, printSummary, ratioSummary } from './support/report.ts';
import { alternatingRounds, type Contender } from './support/job-rounds.ts';
import { Resources, runBenchmark } from './support/resources.ts';

/**
 * End-to-end noop jobs/s of the service in inprocess mode (submitted through POST /v1/jobs by
 * concurrent keep-alive clients, timed until every one is `succeeded` in the table) against raw SQL
 * doing the same three statements per job with as many clients, in alternating rounds on the same
 * database server. PostgreSQL (target ratio >= 0.6), then PGlite (reported). Then the
 * submit-to-start latency of an idle PostgreSQL runner (target median < 20 ms).
 */
const RATIO_TARGET = 0.6;
const LATENCY_TARGET_MS = 20;

const { values: opts, flags } = readOptions(
  'jobs-throughput.ts',
  { jobs: 5000, clients: 10, rounds: 3, warmup: 500, 'latency-jobs': 50, 'pool-size': 0, concurrency: 0 },
  {
    jobs: 'jobs per measurement',
    clients: 'concurrent HTTP clients / SQL clients',
    rounds: 'alternating rounds per backend',
    warmup: 'jobs each contender runs first, not counted',
    'latency-jobs': 'jobs submitted one at a time for the latency figure',
    'pool-size': "the service's DATABASE_POOL_SIZE (0: its default)",
    concurrency: "the service's JOB_CONCURRENCY (0: its default)",
  },
  { jobs: 1000, rounds: 1, warmup: 100, 'latency-jobs': 20 },
  {
    'skip-postgres': 'leave out the PostgreSQL part (and the latency figure)',
    'skip-pglite': 'leave out the PGlite part',
    'pg-waits': "diagnostic: sample what the service's PostgreSQL backends wait on during its rounds (adds load)",
  },
);


const timeoutFor = (n: number) => 60_000 + n * 20;

/** Settings passed to the service only when given (0 leaves the service's own default). */
function serviceEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  if (opts['pool-size']) env.DATABASE_POOL_SIZE = String(opts['pool-size']);
  if (opts.concurrency) env.JOB_CONCURRENCY = String(opts.concurrency);
  return env;
}

/** Status counts of the jobs created since `since`, through the API (`GET /v1/jobs/stats`, an indexed range). */
async function finishedSince(http: JsonClient, since: Date): Promise<{ succeeded: number; failed: number }> {
  const res = await http.request('GET', `/v1/jobs/stats?since=${encodeURIComponent(since.toISOString())}`);
  if (res.status !== 200) throw new Error(`GET /v1/jobs/stats answered ${res.status}: ${JSON.stringify(res.body)}`);
  const counts = res.body.counts as Record<string, number>;
  return { succeeded: counts.succeeded ?? 0, failed: (counts.failed ?? 0) + (counts.cancelled ?? 0) };
}

/**
 * The service as a contender: autocannon submits `n` jobs; once the last answer is in, the newest
 * job is watched by id (jobs are claimed oldest first) and then the count of this run's jobs is
 * confirmed. Nothing polls while jobs are being submitted, so the measurement adds no load then.
 */
function serviceContender(server: ChildServer, http: JsonClient, waits?: () => WaitSampler): Contender {
  return {
    name: 'evalops',
    async run(n, counted) {
      const since = new Date();
      const sampler = counted ? waits?.() : undefined;
      sampler?.start();
      const cpu = cpuWindow(server.pid);
      const started = performance.now();
      const deadline = Date.now() + timeoutFor(n);
      const checkDeadline = (what: string) => {
        if (Date.now() > deadline) throw new Error(`${what} after ${timeoutFor(n)} ms`);
      };
      let answered = 0;
      let submittedAt = 0;
      // autocannon settles on its 1 s sampling tick; the response events give the exact time of the last answer.
      const submit = autocannon({
        url: `${server.url}/v1/jobs`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"type":"noop"}',
        connections: opts.clients,
        amount: n,
        timeout: 30,
      }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
      submit.on('response', () => {
        if (++answered === n) submittedAt = performance.now();
      });
      const result = Promise.resolve(submit);
      result.catch(() => {});
      while (answered < n) {
        checkDeadline(`only ${answered} of ${n} submissions answered`);
        await sleep(5);
      }
      const newest = await http.request('GET', '/v1/jobs?limit=1');
      const newestId = String(newest.body?.jobs?.[0]?.job_id);
      for (;;) {
        const job = await http.request('GET', `/v1/jobs/${newestId}`);
        if (job.body?.status === 'succeeded') break;
        if (job.status !== 200 || !['queued', 'running'].includes(job.body?.status)) throw new Error(`job ${newestId}: ${job.status} ${JSON.stringify(job.body)}`);
        checkDeadline(`the newest job ${newestId} had not succeeded`);
        await sleep(5);
      }
      for (;;) {
        const now = await finishedSince(http, since);
        if (now.failed) throw new Error(`${now.failed} noop job(s) failed or were cancelled`);
        if (now.succeeded >= n) break;
        checkDeadline(`only ${now.succeeded} of ${n} jobs succeeded`);
        await sleep(20);
      }
      const seconds = (performance.now() - started) / 1000;
      const usage = cpu.end();
      const waitLines = (await sampler?.stop()) ?? [];
      const r = await result;
      if (r['2xx'] !== n || r.non2xx || r.errors || r.timeouts) {
        throw new Error(`submissions: ${r['2xx']} 2xx of ${n}, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
      }
      const final = await finishedSince(http, since);
      if (final.succeeded !== n) throw new Error(`${final.succeeded} jobs succeeded since the run started, expected ${n}`);
      if (counted) {
        const submitSeconds = (submittedAt - started) / 1000;
        note(
          `  evalops: ${n} jobs in ${seconds.toFixed(2)} s; last submit answered after ${submitSeconds.toFixed(2)} s (${fmt(n / submitSeconds)} submits/s, ` +
            `p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms); CPU: server ${usage.pidSeconds.toFixed(2)} s ` +
            `(${((usage.pidSeconds / n) * 1000).toFixed(3)} ms/job), load generator ${usage.selfSeconds.toFixed(2)} s, machine ${(usage.machineBusy * 100).toFixed(0)}% busy`,
        );
        if (waitLines.length) note(`  what the service's PostgreSQL backends were doing (average over the run):\n${waitLines.map((l) => `      ${l}`).join('\n')}`);
      }
      return n / seconds;
    },
  };
}

function rawContender(name: string, clients: SqlClient[], table: string): Contender {
  return {
    name,
    async run(n, counted) {
      const cpu = cpuWindow();
      const seconds = await runRawQueue(clients, table, n, timeoutFor(n));
      const usage = cpu.end();
      if (counted) {
        note(`  ${name}: ${n} jobs in ${seconds.toFixed(2)} s; CPU: this process ${usage.selfSeconds.toFixed(2)} s, machine ${(usage.machineBusy * 100).toFixed(0)}% busy`);
      }
      return n / seconds;
    },
  };
}


async function postgresPart(resources: Resources, dir: string): Promise<string[]> {
  const database = await createBenchDatabase(resources, 'jobs');
  note(`PostgreSQL: database ${database.name}`);
  const server = await startEvalops(resources, {
    name: 'evalops (postgres)',
    dataDir: path.join(dir, 'pg-data'),
    logFile: path.join(dir, 'evalops-postgres.log'),
    env: { DATABASE_URL: database.url, MIGRATE_ON_START: 'true', ...serviceEnv() },
  });
  note(`evalops on PostgreSQL at ${server.url}, pid ${server.pid}, settings ${JSON.stringify(serviceEnv())} (empty: its defaults)`);
  const http = new JsonClient(server.url);
  resources.defer('http client', () => http.close());

  const pool = benchPool(resources, database.url);
  for (const variant of ['minimal', 'full'] as const) {
    for (const statement of baselineTableDdl(`bench_jobs_${variant}`, variant)) await pool.query(statement);
  }
  const clients: pg.Client[] = [];
  for (let i = 0; i < opts.clients; i++) {
    const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5000, application_name: 'evalops-bench-raw' });
    client.on('error', () => {});
    await client.connect();
    resources.defer(`raw SQL client ${i}`, () => client.end());
    clients.push(client);
  }

  const service = serviceContender(server, http, flags['pg-waits'] ? () => new WaitSampler(pool, database.name) : undefined);
  const minimal = rawContender('raw SQL (pg)', clients, 'bench_jobs_minimal');
  const full = rawContender('raw SQL (pg, full jobs schema)', clients, 'bench_jobs_full');
  note(`throughput: ${opts.jobs} noop jobs, ${opts.clients} clients, ${opts.rounds} round(s)`);
  const medians = await alternatingRounds([service, minimal, full], { ...opts, nameWidth: 34 });

  const lines = [
    ratioSummary('jobs (postgres)', { name: 'evalops', value: medians.get(service)!, unit: 'jobs/s' }, { name: 'raw SQL', value: medians.get(minimal)!, unit: 'jobs/s' }, RATIO_TARGET).line,
    ratioSummary(
      'jobs (postgres, full-schema baseline)',
      { name: 'evalops', value: medians.get(service)!, unit: 'jobs/s' },
      { name: 'raw SQL on a copy of jobs with all its indexes and NOTIFY trigger', value: medians.get(full)!, unit: 'jobs/s' },
    ).line,
  ];
  lines.push(await latency(server, pool));
  return lines;
}

/** Submit-to-start latency of an idle runner: one job at a time, `started_at - created_at` from the table. */
async function latency(server: ChildServer, pool: pg.Pool): Promise<string> {
  const n = opts['latency-jobs'];
  note(`latency: ${n} jobs, one at a time, on the idle PostgreSQL runner`);
  await sleep(1500);
  const http = new JsonClient(server.url);
  const ids: string[] = [];
  const submitMs: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await http.request('POST', '/v1/jobs', { type: 'noop' });
      submitMs.push(performance.now() - t0);
      if (res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${JSON.stringify(res.body)}`);
      const id = String(res.body.job_id);
      ids.push(id);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { rows } = await pool.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = $1', [id]);
        if (rows[0]?.status === 'succeeded') break;
        if (rows[0] && rows[0].status !== 'queued' && rows[0].status !== 'running') throw new Error(`job ${id} ended ${rows[0].status}`);
        if (Date.now() > deadline) throw new Error(`job ${id} did not succeed within 10 s (status ${rows[0]?.status})`);
        await sleep(2);
      }
      // Let the runner go idle again before the next job.
      await sleep(20);
    }
  } finally {
    http.close();
  }
  const { rows } = await pool.query<{ ms: number }>(
    `SELECT (extract(epoch FROM started_at - created_at) * 1000)::float8 AS ms FROM jobs WHERE job_id = ANY($1::uuid[])`,
    [ids],
  );
  const startMs = rows.map((r) => Number(r.ms));
  const med = median(startMs);
  const p95 = percentile(startMs, 95);
  note(`  submit round trip (HTTP) median ${median(submitMs).toFixed(1)} ms; submit-to-start min ${Math.min(...startMs).toFixed(1)} ms, max ${Math.max(...startMs).toFixed(1)} ms`);
  const verdict = med < LATENCY_TARGET_MS ? 'PASS' : 'FAIL';
  return `jobs latency (postgres, idle runner): median submit-to-start ${med.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms over ${n} jobs (target median < ${LATENCY_TARGET_MS} ms) ${verdict}`;
}

async function pglitePart(resources: Resources, dir: string): Promise<string[]> {
  const server = await startEvalops(resources, { name: 'evalops (pglite)', dataDir: path.join(dir, 'pglite-service'), logFile: path.join(dir, 'evalops-pglite.log'), env: serviceEnv() });
  note(`evalops on embedded PGlite at ${server.url}, pid ${server.pid}`);
  const http = new JsonClient(server.url);
  resources.defer('http client', () => http.close());

  // The baseline's own PGlite, in this process, in a directory like the service's.
  const pglite = await PGlite.create(path.join(dir, 'pglite-raw'));
  const kysely = new Kysely<any>({ dialect: new PGliteDialect(pglite) });
  resources.defer('in-process PGlite', () => kysely.destroy());
  const migrated = await migrateUp(kysely);
  if (migrated.error) throw migrated.error;
  for (const variant of ['minimal', 'full'] as const) {
    for (const statement of baselineTableDdl(`bench_jobs_${variant}`, variant)) await pglite.exec(statement);
  }
  const clients: SqlClient[] = Array.from({ length: opts.clients }, () => ({ query: (text, params) => pglite.query(text, params) }));

  const service = serviceContender(server, http);
  const minimal = rawContender('raw SQL (pglite in-process)', clients, 'bench_jobs_minimal');
  const full = rawContender('raw SQL (pglite, full jobs schema)', clients, 'bench_jobs_full');
  note(`throughput: ${opts.jobs} noop jobs, ${opts.clients} clients, ${opts.rounds} round(s)`);
  const medians = await alternatingRounds([service, minimal, full], { ...opts, nameWidth: 34 });
  return [
    ratioSummary('jobs (pglite)', { name: 'evalops', value: medians.get(service)!, unit: 'jobs/s' }, { name: 'raw SQL on in-process PGlite', value: medians.get(minimal)!, unit: 'jobs/s' }).line,
    ratioSummary(
      'jobs (pglite, full-schema baseline)',
      { name: 'evalops', value: medians.get(service)!, unit: 'jobs/s' },
      { name: 'raw SQL on in-process PGlite, copy of jobs with all indexes and trigger', value: medians.get(full)!, unit: 'jobs/s' },
    ).line,
  ];
}

await runBenchmark('jobs-throughput', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'jobs');
  note(`logs and data in ${dir}`);
  const lines: string[] = [];
  // Each part releases its server, clients and database before the next starts, so nothing idles beside it.
  const parts = [
    { skip: flags['skip-postgres'], name: 'postgres part', run: postgresPart },
    { skip: flags['skip-pglite'], name: 'pglite part', run: pglitePart },
  ];
  for (const part of parts) {
    if (part.skip) continue;
    const partResources = new Resources();
    resources.defer(part.name, () => partResources.releaseAll());
    lines.push(...(await part.run(partResources, dir)));
    await partResources.releaseAll();
  }
  printSummary(lines);
});
