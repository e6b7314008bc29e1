import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { readSnapshotFile } from '../src/evals/dataset-service.ts';
import { type ChatMessage, renderMessages } from '../src/evals/prompt-template.ts';
import { exactScorer } from '../src/evals/scorers/exact-scorer.ts';
import { datasetJsonl, EvalopsClient } from './eval-support.ts';
import { readOptions } from './support/options.ts';
import { checkBuild, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { runBenchmark } from './support/resources.ts';

/**
 * Replay throughput: an evaluation answered only from the response record, with the `exact`
 * scorer, on the real service (`evalops serve`, embedded PGlite, its own process). The cases are
 * recorded once with the built-in echo provider, then replayed in alternating rounds with the
 * baseline: the same work without the service (stream the same snapshot file, render, score with
 * the same exact scorer, write a JSON line) in this process, i.e. the floor of the per-case cost.
 */

const { values: opts } = readOptions(
  'eval-replay.ts',
  { cases: 20_000, rounds: 3, concurrency: 20 },
  { cases: 'cases in the dataset', rounds: 'replay rounds (each beside a baseline round)', concurrency: 'the run concurrency' },
  { cases: 2000, rounds: 1 },
);

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'Repeat the text.' },
  { role: 'user', content: '{{text}}' },
];

/** The baseline: the per-case work of a replay with no database, no HTTP, no record. */
async function baseline(snapshotFile: string, outFile: string): Promise<number> {
  const scorer = exactScorer('exact');
  const out = createWriteStream(outFile);
  const started = performance.now();
  let n = 0;
  for await (const item of readSnapshotFile(snapshotFile)) {
    const messages = renderMessages(MESSAGES, item.row.vars);
    const output = `echo: ${messages[1]!.content}`;
    const score = await scorer.score({ output, expected: item.row.expected, vars: item.row.vars });
    if (!out.write(`${JSON.stringify({ id: item.row.id, vars: item.row.vars, output, scores: { exact: score } })}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
    n += 1;
  }
  out.end();
  await finished(out);
  return n / ((performance.now() - started) / 1000);
}

await runBenchmark('eval-replay', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'eval-replay');
  const server = await startEvalops(resources, { name: 'evalops', dataDir: dir, logFile: path.join(dir, 'server.log'), env: { LOG_LEVEL: 'warn' } });
  const api = new EvalopsClient(server.url);
  // echo answers with the user message: a prompt `echo: {{text}}` makes every case pass `exact`.
  await api.call('POST', '/v1/prompts', { name: 'bench-replay', messages: [MESSAGES[0], { role: 'user', content: 'echo: {{text}}' }] });
  const data = path.join(dir, 'cases.jsonl');
  writeFileSync(data, datasetJsonl(opts.cases));
  const snapshot = await api.call('POST', '/v1/datasets', datasetJsonl(opts.cases), 'application/x-ndjson');
  note(`dataset: ${fmt(snapshot.row_count)} cases, ${snapshot.data_snapshot_id}`);
  const request = { prompt_version: 'bench-replay@1', data_snapshot_id: snapshot.data_snapshot_id, provider: 'echo', scorers: [{ name: 'exact', type: 'exact' }], concurrency: opts.concurrency, seed: 1 };
  const recorded = await api.runToEnd({ ...request, mode: 'live' });
  note(`recorded with echo (live): ${fmt(opts.cases / (recorded.summary.execution.duration_ms / 1000))} cases/s`);

  const snapshotFile = path.join(dir, 'datasets', `${snapshot.data_snapshot_id.slice(7)}.jsonl`);
  const evalops: number[] = [];
  const endToEnd: number[] = [];
  const floor: number[] = [];
  for (let round = 1; round <= opts.rounds; round += 1) {
    const order = round % 2 === 1 ? ['evalops', 'baseline'] : ['baseline', 'evalops'];
    for (const who of order) {
      if (who === 'evalops') {
        const started = performance.now();
        const run = await api.runToEnd({ ...request, mode: 'replay' }, 20);
        const wall = (performance.now() - started) / 1000;
        if (run.summary.passed !== opts.cases || run.summary.execution.cached !== opts.cases) throw new Error(`replay did not reproduce every case: ${JSON.stringify(run.summary)}`);
        evalops.push(opts.cases / (run.summary.execution.duration_ms / 1000));
        endToEnd.push(opts.cases / wall);
        note(`round ${round}: evalops replay ${fmt(evalops.at(-1)!)} cases/s (runner), ${fmt(endToEnd.at(-1)!)} cases/s submit-to-succeeded`);
      } else {
        floor.push(await baseline(snapshotFile, path.join(dir, `baseline-${round}.jsonl`)));
        note(`round ${round}: in-process floor ${fmt(floor.at(-1)!)} cases/s`);
      }
    }
  }
  printSummary([
    `eval-replay: evalops ${fmt(median(evalops))} cases/s replay with exact (${fmt(opts.cases)} cases, concurrency ${opts.concurrency}, runner time) INFO`,
    `eval-replay (end to end): submit to succeeded ${fmt(median(endToEnd))} cases/s INFO`,
    ratioSummary('eval-replay vs floor', { name: 'evalops', value: median(evalops), unit: 'cases/s' }, { name: 'in-process loop without service', value: median(floor), unit: 'cases/s' }).line,
  ]);
});
