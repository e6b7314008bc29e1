import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { datasetJsonl, EvalopsClient, memoryOf } from './eval-support.ts';
import { readOptions } from './support/options.ts';
import { checkBuild, startEvalops, tempDir } from './support/processes.ts';
import { fmt, note, printSummary } from './support/report.ts';
import { createBenchDatabase } from './support/postgres.ts';
import { type Resources, runBenchmark } from './support/resources.ts';

/**
 * Peak memory of a 100,000-case replay (target: peak RSS under 300 MB). The dataset is uploaded as
 * a stream and recorded once with the built-in echo provider by one server process; a fresh server
 * process then replays it, and its peak RSS (VmHWM, which also covers start-up) is the figure. The
 * baseline, from the same run, is the RSS of that fresh process idle after start-up: the difference
 * is what the replay itself costs.
 *
 * Measured twice: on PostgreSQL (DATABASE_URL: the server process holds no database, so the figure
 * is evalops' own; this one has the target) and on the embedded PGlite default, whose WebAssembly
 * heap alone takes several hundred MB in the server process (reported, no target).
 */

const TARGET_MB = 300;
const { values: opts, flags } = readOptions(
  'eval-memory.ts',
  { cases: 100_000, concurrency: 20 },
  { cases: 'cases in the dataset', concurrency: 'the run concurrency' },
  { cases: 10_000 },
  { 'skip-pglite': 'leave out the embedded-database measurement', 'skip-postgres': 'leave out the PostgreSQL measurement' },
);

interface Measurement {
  idleMb: number;
  peakMb: number;
  sampledMaxMb: number;
  casesPerSecond: number;
}

async function measure(resources: Resources, label: string, dir: string, file: string, env: Record<string, string>): Promise<Measurement> {
  const dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const first = await startEvalops(resources, { name: `evalops ${label} (record)`, dataDir, logFile: path.join(dir, 'record.log'), env: { LOG_LEVEL: 'warn', ...env } });
  let api = new EvalopsClient(first.url);
  await api.call('POST', '/v1/prompts', { name: 'bench-memory', messages: [{ role: 'system', content: 'Repeat the text.' }, { role: 'user', content: 'echo: {{text}}' }] });
  const upload = await fetch(`${first.url}/v1/datasets?name=memory`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: Readable.toWeb(createReadStream(file)) as unknown as RequestInit['body'],
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  const snapshot = (await upload.json()) as { data_snapshot_id: string; row_count: number };
  note(`${label}: uploaded ${fmt(snapshot.row_count)} cases (streamed); recording server peak RSS so far ${fmt(memoryOf(first.pid).hwmMb)} MB`);
  const request = { prompt_version: 'bench-memory@1', data_snapshot_id: snapshot.data_snapshot_id, provider: 'echo', scorers: [{ name: 'exact', type: 'exact' }], concurrency: opts.concurrency, seed: 5 };
  const recorded = await api.runToEnd({ ...request, mode: 'live' }, 500);
  note(`${label}: recorded live with echo in ${fmt(recorded.summary.execution.duration_ms / 1000, 1)} s; recording server peak RSS ${fmt(memoryOf(first.pid).hwmMb)} MB`);
  await first.stop();

  const second = await startEvalops(resources, { name: `evalops ${label} (replay)`, dataDir, logFile: path.join(dir, 'replay.log'), env: { LOG_LEVEL: 'warn', ...env } });
  api = new EvalopsClient(second.url);
  await new Promise((r) => setTimeout(r, 2000));
  const idle = memoryOf(second.pid);
  note(`${label}: fresh server idle: RSS ${fmt(idle.rssMb)} MB (peak so far ${fmt(idle.hwmMb)} MB)`);
  let sampledMax = 0;
  const sampler = setInterval(() => {
    sampledMax = Math.max(sampledMax, memoryOf(second.pid).rssMb);
  }, 100);
  let run;
  try {
    run = await api.runToEnd({ ...request, mode: 'replay' }, 500);
  } finally {
    clearInterval(sampler);
  }
  const after = memoryOf(second.pid);
  if (run.summary.cases !== opts.cases || run.summary.execution.cached !== opts.cases) throw new Error(`the replay did not answer every case from the record: ${JSON.stringify(run.summary)}`);
  const casesPerSecond = opts.cases / (run.summary.execution.duration_ms / 1000);
  note(`${label}: replayed ${fmt(opts.cases)} cases in ${fmt(run.summary.execution.duration_ms / 1000, 1)} s (${fmt(casesPerSecond)} cases/s); results.jsonl ${fmt(run.files.find((f: { name: string }) => f.name === 'results.jsonl').bytes / 1e6, 1)} MB; peak RSS ${fmt(after.hwmMb)} MB`);
  await second.stop();
  return { idleMb: idle.rssMb, peakMb: after.hwmMb, sampledMaxMb: sampledMax, casesPerSecond };
}

await runBenchmark('eval-memory', async (resources) => {
  checkBuild();
  const root = tempDir(resources, 'eval-memory');
  const file = path.join(root, 'cases.jsonl');
  writeFileSync(file, datasetJsonl(opts.cases));
  const lines: string[] = [];
  if (!flags['skip-postgres']) {
    const database = await createBenchDatabase(resources, 'evalmem');
    const m = await measure(resources, 'postgresql', path.join(root, 'pg'), file, { DATABASE_URL: database.url, MIGRATE_ON_START: 'true' });
    lines.push(
      `eval-memory (PostgreSQL): peak RSS ${fmt(m.peakMb)} MB for a ${fmt(opts.cases)}-case replay (sampled max ${fmt(m.sampledMaxMb)} MB) vs idle server ${fmt(m.idleMb)} MB (target peak < ${TARGET_MB} MB) ${m.peakMb < TARGET_MB ? 'PASS' : 'FAIL'}`,
      `eval-memory (PostgreSQL): replay ${fmt(m.casesPerSecond)} cases/s INFO`,
    );
  }
  if (!flags['skip-pglite']) {
    const m = await measure(resources, 'pglite', path.join(root, 'pglite'), file, {});
    lines.push(`eval-memory (embedded PGlite): peak RSS ${fmt(m.peakMb)} MB for a ${fmt(opts.cases)}-case replay vs idle server ${fmt(m.idleMb)} MB: the replay adds ${fmt(m.peakMb - m.idleMb)} MB; ${fmt(m.casesPerSecond)} cases/s INFO`);
  }
  printSummary(lines);
});
