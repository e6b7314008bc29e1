import path from 'node:path';
import { datasetJsonl, EvalopsClient } from './eval-support.ts';
import { readOptions } from './support/options.ts';
import { checkBuild, type ChildServer, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { type Resources, runBenchmark } from './support/resources.ts';

/**
 * Pages of a large run's cases (`GET /v1/evaluations/:id/cases`, what the dashboard's run page
 * reads) on the real service (`evalops serve`, embedded PGlite, its own process): the first page
 * and a page near the end, each cold (the first request after a start, which builds the run's
 * results index) and warm (median of the following requests); a search, cold and its next page.
 * Baseline in the same run: the same page through `GET /v1/evaluations/:id/results?offset=&limit=`,
 * which reads results.jsonl from its start up to the page.
 */

const { values: opts } = readOptions(
  'eval-cases.ts',
  { cases: 100_000, rounds: 30, restarts: 3 },
  { cases: 'cases in the run', rounds: 'warm rounds (each request once per round, in a rotated order)', restarts: 'server starts per cold figure' },
  { cases: 5000, rounds: 5, restarts: 1 },
);
const PAGE = 50;
const deep = Math.max(0, opts.cases - 1000);

async function timed(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await call();
  return performance.now() - started;
}

/** Median time of each call over `rounds` rounds, the calls in a rotated order each round. */
async function warm(calls: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const names = Object.keys(calls);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < opts.rounds; round += 1) {
    for (let k = 0; k < names.length; k += 1) {
      const name = names[(round + k) % names.length]!;
      times[name]!.push(await timed(calls[name]!));
    }
  }
  return Object.fromEntries(names.map((n) => [n, median(times[n]!)]));
}

await runBenchmark('eval-cases', async (resources: Resources) => {
  checkBuild();
  const dir = tempDir(resources, 'eval-cases');
  const logFile = path.join(dir, 'server.log');
  const start = () => startEvalops(resources, { name: 'evalops', dataDir: dir, logFile, env: { LOG_LEVEL: 'warn' } });
  let server: ChildServer = await start();
  let api = new EvalopsClient(server.url);
  await api.call('POST', '/v1/prompts', { name: 'bench-cases', messages: [{ role: 'user', content: 'echo: {{text}}' }] });
  const snapshot = await api.call('POST', '/v1/datasets', datasetJsonl(opts.cases), 'application/x-ndjson');
  const run = await api.runToEnd({ prompt_version: 'bench-cases@1', data_snapshot_id: snapshot.data_snapshot_id, provider: 'echo', scorers: [{ name: 'exact', type: 'exact' }], concurrency: 128 });
  note(`run ${run.run_id}: ${fmt(opts.cases)} cases, results.jsonl ${fmt(run.files.find((f: { name: string }) => f.name === 'results.jsonl').bytes / 1024 / 1024, 1)} MiB`);

  const cases = (offset: number, extra = '') => api.call('GET', `/v1/evaluations/${run.run_id}/cases?offset=${offset}&limit=${PAGE}${extra}`);
  const results = async (offset: number) => {
    const res = await fetch(`${api.baseUrl}/v1/evaluations/${run.run_id}/results?offset=${offset}&limit=${PAGE}`, { signal: AbortSignal.timeout(600_000) });
    await res.text();
  };
  const restart = async () => {
    await server.stop();
    server = await start();
    api = new EvalopsClient(server.url);
    await api.call('GET', `/v1/evaluations/${run.run_id}`);
  };

  // Cold: the first request after a start builds the index (results.jsonl is in the page cache
  // by then for both contenders).
  const coldFirst: number[] = [];
  const coldDeep: number[] = [];
  const coldSearch: number[] = [];
  for (let i = 0; i < opts.restarts; i += 1) {
    await restart();
    coldFirst.push(await timed(() => cases(0)));
    await restart();
    coldDeep.push(await timed(() => cases(deep)));
    // A search on a warm index: its first page reads the whole file once.
    coldSearch.push(await timed(() => cases(0, '&q=number%2099')));
  }
  const page = await cases(deep);
  if (page.cases[0]?.id !== `c${deep + 1}` || page.total !== opts.cases) throw new Error(`unexpected page: ${JSON.stringify(page).slice(0, 300)}`);

  const w = await warm({
    first: () => cases(0),
    deep: () => cases(deep),
    searchNext: () => cases(PAGE, '&q=number%2099'),
    scanFirst: () => results(0),
    scanDeep: () => results(deep),
  });
  const [warmFirst, warmDeep, warmSearchNext, scanFirst, scanDeep] = [w.first!, w.deep!, w.searchNext!, w.scanFirst!, w.scanDeep!];
  note(`cases, first page: cold ${fmt(median(coldFirst), 1)} ms, warm ${fmt(warmFirst, 1)} ms; results stream ${fmt(scanFirst, 1)} ms`);
  note(`cases at offset ${fmt(deep)}: cold ${fmt(median(coldDeep), 1)} ms, warm ${fmt(warmDeep, 1)} ms; results stream ${fmt(scanDeep, 1)} ms`);
  note(`search "number 99": first page ${fmt(median(coldSearch), 1)} ms (reads the file), next page ${fmt(warmSearchNext, 1)} ms`);

  printSummary([
    `eval-cases: first page cold ${fmt(median(coldFirst), 1)} ms (builds the index of ${fmt(opts.cases)} cases), warm ${fmt(warmFirst, 1)} ms INFO`,
    `eval-cases: page at offset ${fmt(deep)} cold ${fmt(median(coldDeep), 1)} ms, warm ${fmt(warmDeep, 1)} ms INFO`,
    `eval-cases: search first page ${fmt(median(coldSearch), 1)} ms, next page ${fmt(warmSearchNext, 1)} ms INFO`,
    // As fast deep in the run as at its start (ratio of times, first over deep: 1 is equal).
    ratioSummary(`eval-cases (warm, offset ${fmt(deep)} vs 0)`, { name: 'first page', value: warmFirst, unit: 'ms' }, { name: `page at ${fmt(deep)}`, value: warmDeep, unit: 'ms' }, 0.67).line,
    ratioSummary(`eval-cases (warm, offset ${fmt(deep)}) vs the results stream`, { name: 'results scan', value: scanDeep, unit: 'ms' }, { name: 'cases page', value: warmDeep, unit: 'ms' }, 5).line,
  ]);
});
