import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.ts';
import { migrateUp } from '../src/db/migrator.ts';
import { claimJobs, completeJobs } from '../src/jobs/job-store.ts';
import { cpuWindow } from './support/cpu.ts';
import { readOptions } from './support/options.ts';
import { createBenchDatabase } from './support/postgres.ts';
import { sleep, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { runBenchmark } from './support/resources.ts';

/**
 * Claim rate of the real `claimJobs` query (src/jobs/job-store.ts) with 200,000 finished rows in the
 * table against an empty table, on the same PostgreSQL server in the same run: concurrent claimers
 * each claim-then-complete (`completeJobs`) from a prefilled queue until it is drained, in
 * alternating rounds. Target: the rate with finished rows at least 0.8 of the empty-table rate.
 */
const TARGET = 0.8;
/** What the in-process runner passes: the types its registry knows (noop and sleep built in). */
const TYPES = ['noop', 'sleep'] as const;
const LEASE_MS = 30_000;

const { values: opts, flags } = readOptions(
  'claim-scaling.ts',
  { finished: 200_000, queue: 10_000, claimers: 10, batch: 1, rounds: 3 },
  {
    finished: 'succeeded rows in the table for the "finished rows" case',
    queue: 'queued rows drained per measurement',
    claimers: 'concurrent claimers',
    batch: 'jobs per claim (the runner claims up to its free slots)',
    rounds: 'alternating rounds of the two cases',
  },
  { finished: 50_000, queue: 2000, rounds: 1 },
  { 'no-analyze': 'skip ANALYZE after filling the table (leave statistics to autovacuum)' },
);

type Case = 'empty' | 'finished';

await runBenchmark('claim-scaling', async (resources) => {
  const database = await createBenchDatabase(resources, 'claim');
  const handle = await openDatabase({ databaseUrl: database.url, dataDir: tempDir(resources, 'claim'), poolSize: opts.claimers + 2 });
  resources.defer('database handle', () => handle.close());
  const { db } = handle;
  const migrated = await migrateUp(db);
  if (migrated.error) throw migrated.error;
  note(
    `PostgreSQL database ${database.name}: claimJobs(limit ${opts.batch}) + completeJobs by ${opts.claimers} claimers, ` +
      `${fmt(opts.queue)} queued rows per measurement, empty table vs ${fmt(opts.finished)} succeeded rows, ${opts.rounds} round(s)` +
      (flags['no-analyze'] ? ', no ANALYZE' : ''),
  );

  /** Empties the table, adds the finished rows (for that case) and the queue; settles statistics and WAL. */
  const prepare = async (kind: Case) => {
    await sql`TRUNCATE jobs`.execute(db);
    if (kind === 'finished') {
      const t0 = performance.now();
      await sql`
        INSERT INTO jobs (job_id, type, status, payload, result, attempts, created_at, run_at, started_at, finished_at, updated_at)
        SELECT gen_random_uuid(), 'noop', 'succeeded', '{}'::jsonb, '{"ok":true}'::jsonb, 1, t, t, t + INTERVAL '1 ms', t + INTERVAL '2 ms', t + INTERVAL '2 ms'
        FROM (SELECT now() - g * INTERVAL '10 ms' AS t FROM generate_series(1, ${opts.finished}::int) AS g) AS s`.execute(db);
      note(`  inserted ${fmt(opts.finished)} succeeded rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await sql`
      INSERT INTO jobs (job_id, type, status, created_at, run_at)
      SELECT gen_random_uuid(), 'noop', 'queued', now() + g * INTERVAL '1 microsecond', now()
      FROM generate_series(1, ${opts.queue}::int) AS g`.execute(db);
    if (!flags['no-analyze']) await sql`ANALYZE jobs`.execute(db);
    // A checkpoint now rather than in the middle of the measurement.
    await sql`CHECKPOINT`.execute(db).catch(() => {});
  };

  /** The plan PostgreSQL picks for the claim's inner SELECT, as one line. */
  const claimPlan = async () => {
    const { rows } = await sql<{ 'QUERY PLAN': string }>`
      EXPLAIN SELECT job_id FROM jobs WHERE status = 'queued' AND run_at <= now() AND type = ANY(${[...TYPES]}::text[])
      ORDER BY priority DESC, run_at, created_at LIMIT ${opts.batch} FOR UPDATE SKIP LOCKED`.execute(db);
    return rows.map((r) => r['QUERY PLAN'].trim()).find((l) => /Scan/.test(l)) ?? rows[0]?.['QUERY PLAN'] ?? '?';
  };

  /** Drains the queue; claims per second. */
  const drain = async (): Promise<number> => {
    let claimed = 0;
    const deadline = Date.now() + 60_000 + opts.queue * 20;
    const claimer = async (index: number) => {
      const workerId = `bench-claimer-${index}`;
      for (;;) {
        if (Date.now() > deadline) throw new Error(`queue not drained in time (${claimed} of ${opts.queue} claimed)`);
        const jobs = await claimJobs(db, workerId, opts.batch, LEASE_MS, TYPES);
        if (jobs.length === 0) {
          const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE status = 'queued'`.execute(db);
          if (Number(left.rows[0]?.n ?? 0) === 0) return;
          await sleep(1);
          continue;
        }
        const done = await completeJobs(db, workerId, jobs.map((j) => ({ jobId: j.job_id, result: { ok: true } })));
        if (done.length !== jobs.length) throw new Error(`completeJobs finished ${done.length} of ${jobs.length} claimed jobs`);
        claimed += jobs.length;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: opts.claimers }, (_, i) => claimer(i)));
    const seconds = (performance.now() - started) / 1000;
    if (claimed !== opts.queue) throw new Error(`claimed ${claimed} jobs, expected ${opts.queue}`);
    return claimed / seconds;
  };

  const figures: Record<Case, number[]> = { empty: [], finished: [] };
  const plans = new Set<string>();
  for (let round = 1; round <= opts.rounds; round++) {
    const order: Case[] = round % 2 === 1 ? ['empty', 'finished'] : ['finished', 'empty'];
    for (const kind of order) {
      await prepare(kind);
      const plan = await claimPlan();
      if (!plans.has(`${kind}: ${plan}`)) note(`  claim plan (${kind}): ${plan}`);
      plans.add(`${kind}: ${plan}`);
      const cpu = cpuWindow();
      const rate = await drain();
      const usage = cpu.end();
      figures[kind].push(rate);
      const label = kind === 'empty' ? 'empty table' : `${fmt(opts.finished)} finished rows`;
      note(`round ${round}: ${label.padEnd(22)} ${fmt(rate).padStart(7)} claims/s  (CPU: this process ${((usage.selfSeconds / opts.queue) * 1e6).toFixed(0)} us/claim, machine ${(usage.machineBusy * 100).toFixed(0)}% busy)`);
    }
  }

  const withFinished = median(figures.finished);
  const empty = median(figures.empty);
  printSummary([
    ratioSummary('claim', { name: `with ${fmt(opts.finished)} finished rows`, value: withFinished, unit: 'claims/s' }, { name: 'empty table', value: empty, unit: 'claims/s' }, TARGET).line,
  ]);
});
