import { execFile } from 'node:child_process';
import { statSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { readOptions } from './support/options.ts';
import { checkBuild, CLI, type ChildServer, startEvalops, tempDir } from './support/processes.ts';
import { fmt, note, percentile, printSummary } from './support/report.ts';
import { runBenchmark } from './support/resources.ts';

/**
 * `/health` latency of the real service on its embedded PGlite while `evalops sql` runs its slowest
 * allowed statement through it (a CPU-bound statement stopped by --timeout, after the snapshot of a
 * database of --mb megabytes), against `/health` latency of the same server idle, in alternating
 * rounds. Target: no /health answer slower than 1 s while the statement runs (issue 12).
 */
const TARGET_MAX_MS = 1000;
const SLOWEST = 'SELECT count(*) FROM generate_series(1, 10000000000)';

const { values: opts } = readOptions(
  'sql-isolation.ts',
  { rounds: 3, mb: 100, timeout: 8000, every: 20 },
  { rounds: 'alternating rounds', mb: 'size of the embedded database to fill (MB of jobs rows)', timeout: 'the statement\'s --timeout in ms', every: 'ms between /health probes' },
  { rounds: 1, mb: 20, timeout: 3000 },
);

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One GET /health; its latency in ms (a probe that fails or takes over 10 s stops the benchmark). */
function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(`${url}/health`, { agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`/health answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('/health did not answer within 10 s')));
    req.on('error', reject);
  });
}

/** Probes /health every `every` ms until `until` settles (or for `ms`), returning the latencies. */
async function probeWhile(url: string, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const latencies: number[] = [];
  while (!done) {
    latencies.push(await probe(url));
    await new Promise((r) => setTimeout(r, opts.every));
  }
  return latencies;
}

function runSql(dataDir: string): Promise<{ code: number; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'sql', '--timeout', String(opts.timeout), SLOWEST], { env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir }, timeout: 300_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr, ms: performance.now() - started });
    });
  });
}

function dirMb(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return bytes / 1e6;
}

/** Fills the (migrated) embedded database with finished jobs carrying ~1 kB payloads. */
async function fill(pgdata: string, mb: number): Promise<void> {
  const pglite = await PGlite.create(pgdata);
  try {
    const perBatch = 20_000;
    for (;;) {
      const size = (await pglite.query<{ mb: number }>('SELECT pg_database_size(current_database()) / 1e6 AS mb')).rows[0]!.mb;
      if (size >= mb) break;
      await pglite.exec(`
        INSERT INTO jobs (job_id, type, status, payload, created_at, finished_at)
        SELECT gen_random_uuid(), 'noop', 'succeeded', jsonb_build_object('pad', repeat(md5(random()::text), 30)), now() - random() * interval '7 days', now()
        FROM generate_series(1, ${perBatch})`);
    }
    await pglite.exec('CHECKPOINT');
  } finally {
    await pglite.close();
  }
}

const summarise = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs), n: xs.length });
const show = (s: ReturnType<typeof summarise>) => `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms (${s.n} probes)`;

await runBenchmark('sql-isolation', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'sql-isolation');
  const dataDir = path.join(dir, 'data');
  // A first start creates and migrates the embedded database; it is then filled with the server stopped.
  const first = await startEvalops(resources, { name: 'evalops (migrate)', dataDir, logFile: path.join(dir, 'evalops.log') });
  await first.stop();
  note(`filling the embedded database to ${opts.mb} MB`);
  await fill(path.join(dataDir, 'pglite'), opts.mb);
  note(`embedded database: ${fmt(dirMb(path.join(dataDir, 'pglite')))} MB on disk (tables, indexes and WAL: what each snapshot copies)`);

  const server: ChildServer = await startEvalops(resources, { name: 'evalops', dataDir, logFile: path.join(dir, 'evalops.log') });
  note(`evalops (embedded PGlite) at ${server.url}, pid ${server.pid}; the statement: evalops sql --timeout ${opts.timeout} "${SLOWEST}"`);
  for (let i = 0; i < 50; i++) await probe(server.url);

  const idle: number[] = [];
  const busy: number[] = [];
  const idleFor = () => new Promise((r) => setTimeout(r, opts.timeout + 3000));
  for (let round = 1; round <= opts.rounds; round++) {
    const order: Array<'idle' | 'busy'> = round % 2 === 1 ? ['idle', 'busy'] : ['busy', 'idle'];
    for (const which of order) {
      if (which === 'idle') {
        const xs = await probeWhile(server.url, idleFor());
        idle.push(...xs);
        note(`round ${round}: idle server            ${show(summarise(xs))}`);
      } else {
        const run = runSql(dataDir);
        const xs = await probeWhile(server.url, run);
        const r = await run;
        if (r.code !== 1 || !/statement timeout/.test(r.stderr)) throw new Error(`evalops sql did not end at its timeout (exit ${r.code}): ${r.stderr}`);
        busy.push(...xs);
        note(`round ${round}: while evalops sql runs ${show(summarise(xs))}; the command took ${fmt(r.ms)} ms`);
      }
    }
  }

  const b = summarise(busy);
  const i = summarise(idle);
  const verdict = b.max < TARGET_MAX_MS ? 'PASS' : 'FAIL';
  printSummary([
    `sql-isolation (/health p50): while evalops sql runs ${b.p50.toFixed(1)} ms vs idle ${i.p50.toFixed(1)} ms = ${(b.p50 / i.p50).toFixed(2)} (no target) INFO`,
    `sql-isolation (/health p99): while evalops sql runs ${b.p99.toFixed(1)} ms vs idle ${i.p99.toFixed(1)} ms = ${(b.p99 / i.p99).toFixed(2)} (no target) INFO`,
    `sql-isolation (/health max): while evalops sql runs ${b.max.toFixed(1)} ms vs idle ${i.max.toFixed(1)} ms = ${(b.max / i.max).toFixed(2)} (target: under ${TARGET_MAX_MS} ms) ${verdict}`,
  ]);
});
