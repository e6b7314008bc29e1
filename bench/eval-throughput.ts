import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuWindow } from './support/cpu.ts';
import { datasetJsonl, EvalopsClient, TimedOpenAIServer } from './eval-support.ts';
import { readOptions } from './support/options.ts';
import { createBenchDatabase } from './support/postgres.ts';
import { checkBuild, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { killOnExit, runBenchmark } from './support/resources.ts';

/**
 * Live evaluation throughput against an OpenAI-compatible endpoint that answers after 50 ms:
 * `--cases` cases (2,000) at concurrency 20, evalops (`evalops serve`, embedded PGlite, its own
 * process) against the ideal rate (concurrency / latency = 400 cases/s; target >= 0.9) and against
 * promptfoo (installed from npm into a temp dir during the run; same endpoint, same cases, same
 * concurrency, cache off; target >= 1.0), in alternating rounds.
 *
 * Both are timed by the endpoint itself, from the first request it receives to the last answer it
 * sends, so process start-up (promptfoo's CLI, evalops' job pick-up) is left out of both figures;
 * submit-to-finish wall times are printed beside them.
 *
 * promptfoo 0.121.x is the last line whose `engines` accepts Node 20 (0.122 and later want Node
 * 22.22); override with BENCH_PROMPTFOO_VERSION, or reuse an install with BENCH_PROMPTFOO_DIR.
 */

const PROMPTFOO_VERSION = process.env.BENCH_PROMPTFOO_VERSION ?? '0.121.20';
const LATENCY_MS = 50;

const { values: opts, flags } = readOptions(
  'eval-throughput.ts',
  { cases: 2000, concurrency: 20, rounds: 3 },
  { cases: 'cases per run', concurrency: 'requests in flight, for both tools', rounds: 'alternating rounds' },
  { cases: 400, rounds: 1 },
  { postgres: 'run the service on PostgreSQL (BENCH_PG_URL) instead of the embedded PGlite' },
);

function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string>; timeoutMs: number; log: string }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const forget = killOnExit(() => child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      forget();
      writeFileSync(options.log, output);
      resolve({ code, output });
    });
  });
}

/** Installs promptfoo with npm into `dir`; the path of its CLI, or the reason it is unavailable. */
async function installPromptfoo(dir: string): Promise<{ cli: string } | { reason: string }> {
  const reuse = process.env.BENCH_PROMPTFOO_DIR;
  const root = reuse ?? dir;
  const cli = path.join(root, 'node_modules', '.bin', 'promptfoo');
  if (!reuse) {
    writeFileSync(path.join(dir, 'package.json'), '{"private":true}\n');
    note(`installing promptfoo@${PROMPTFOO_VERSION} with npm into ${dir} (takes a few minutes)`);
    const npm = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `promptfoo@${PROMPTFOO_VERSION}`], { cwd: dir, timeoutMs: 20 * 60_000, log: path.join(dir, 'npm-install.log') });
    if (npm.code !== 0) return { reason: `npm install promptfoo@${PROMPTFOO_VERSION} exited ${npm.code}: ${npm.output.trim().split('\n').slice(-5).join(' | ')}` };
  }
  if (!existsSync(cli)) return { reason: `${cli} is missing after the install` };
  const version = await run(cli, ['--version'], { cwd: root, timeoutMs: 120_000, log: path.join(dir, 'promptfoo-version.log'), env: quietPromptfoo });
  if (version.code !== 0) return { reason: `promptfoo --version exited ${version.code}: ${version.output.trim().split('\n').slice(-3).join(' | ')}` };
  note(`promptfoo ${version.output.trim().split('\n').at(-1)} ready`);
  return { cli };
}

const quietPromptfoo = { PROMPTFOO_DISABLE_TELEMETRY: '1', PROMPTFOO_DISABLE_UPDATE: '1', PROMPTFOO_DISABLE_SHARING: '1' };

await runBenchmark('eval-throughput', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'eval-throughput');
  const endpoint = new TimedOpenAIServer(LATENCY_MS);
  await endpoint.start(resources);
  const ideal = opts.concurrency / (LATENCY_MS / 1000);

  const promptfooDir = tempDir(resources, 'promptfoo');
  const promptfoo = await installPromptfoo(promptfooDir);
  if ('reason' in promptfoo) note(`promptfoo unavailable: ${promptfoo.reason}`);
  else {
    // The same cases: {{text}} in the user message, `equals` the expected answer (evalops' exact scorer).
    writeFileSync(path.join(promptfooDir, 'prompt.json'), JSON.stringify([{ role: 'system', content: 'Repeat the text.' }, { role: 'user', content: '{{text}}' }]));
    const csv = ['text,__expected', ...Array.from({ length: opts.cases }, (_, i) => `case number ${i + 1},equals:echo: case number ${i + 1}`)];
    writeFileSync(path.join(promptfooDir, 'tests.csv'), `${csv.join('\n')}\n`);
    writeFileSync(
      path.join(promptfooDir, 'promptfooconfig.yaml'),
      ['prompts:', '  - file://prompt.json', 'providers:', '  - id: openai:chat:gpt-bench', '    config:', `      apiBaseUrl: ${endpoint.url}`, '      apiKey: not-needed', '      temperature: 0', 'tests: file://tests.csv', ''].join('\n'),
    );
  }

  const database: Record<string, string> = flags.postgres ? { DATABASE_URL: (await createBenchDatabase(resources, 'evalthr')).url, MIGRATE_ON_START: 'true' } : {};
  const server = await startEvalops(resources, { name: 'evalops', dataDir: path.join(dir, 'data'), logFile: path.join(dir, 'server.log'), env: { LOG_LEVEL: 'warn', ...database } });
  note(`evalops on ${flags.postgres ? 'PostgreSQL' : 'the embedded PGlite database'}`);
  const api = new EvalopsClient(server.url);
  await api.call('POST', '/v1/prompts', { name: 'bench-live', messages: [{ role: 'system', content: 'Repeat the text.' }, { role: 'user', content: '{{text}}' }], params: { temperature: 0 } });
  const snapshot = await api.call('POST', '/v1/datasets', datasetJsonl(opts.cases), 'application/x-ndjson');
  note(`dataset ${snapshot.data_snapshot_id}: ${fmt(snapshot.row_count)} cases; endpoint ${endpoint.url} answers after ${LATENCY_MS} ms; ideal ${fmt(ideal)} cases/s`);

  const evalops: number[] = [];
  const evalopsCpuMs: number[] = [];
  const evalopsWall: number[] = [];
  const peer: number[] = [];
  const peerWall: number[] = [];
  let seed = 1000;
  const runEvalops = async (round: number) => {
    endpoint.reset();
    const started = performance.now();
    const cpu = cpuWindow(server.pid);
    // A new seed per round: new cache keys, so every case goes to the endpoint.
    const done = await api.runToEnd({
      prompt_version: 'bench-live@1',
      data_snapshot_id: snapshot.data_snapshot_id,
      provider: { type: 'openai', base_url: endpoint.url },
      model: 'gpt-bench',
      scorers: [{ name: 'exact', type: 'exact' }],
      concurrency: opts.concurrency,
      seed: seed++,
    });
    evalopsWall.push(opts.cases / ((performance.now() - started) / 1000));
    const used = cpu.end();
    evalopsCpuMs.push((used.pidSeconds * 1000) / opts.cases);
    if (endpoint.requests !== opts.cases || done.summary.passed !== opts.cases) throw new Error(`evalops: ${endpoint.requests} requests, ${done.summary.passed} passed`);
    evalops.push(endpoint.rate());
    note(
      `round ${round}: evalops ${fmt(evalops.at(-1)!)} cases/s at the endpoint (max ${endpoint.maxInFlight} in flight), ${fmt(evalopsWall.at(-1)!)} submit-to-succeeded; ` +
        `server CPU ${evalopsCpuMs.at(-1)!.toFixed(2)} ms per case; machine ${Math.round(used.machineBusy * 100)}% busy; ` +
        `endpoint saw ${endpoint.shape().meanInFlight.toFixed(1)} in flight on average, answered after ${endpoint.shape().meanDelayMs.toFixed(1)} ms on average`,
    );
  };
  const runPromptfoo = async (round: number) => {
    if ('reason' in promptfoo) return;
    endpoint.reset();
    const out = path.join(promptfooDir, `out-${round}.json`);
    const started = performance.now();
    const res = await run(promptfoo.cli, ['eval', '-c', 'promptfooconfig.yaml', '--no-cache', '-j', String(opts.concurrency), '--no-table', '--no-write', '--no-progress-bar', '-o', out], {
      cwd: promptfooDir,
      env: quietPromptfoo,
      timeoutMs: 30 * 60_000,
      log: path.join(promptfooDir, `run-${round}.log`),
    });
    peerWall.push(opts.cases / ((performance.now() - started) / 1000));
    const stats = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { results: { stats: { successes: number } } }).results.stats : null;
    if (endpoint.requests !== opts.cases || stats?.successes !== opts.cases) {
      throw new Error(`promptfoo: exit ${res.code}, ${endpoint.requests} requests, ${stats?.successes} successes: ${res.output.slice(-800)}`);
    }
    peer.push(endpoint.rate());
    note(
      `round ${round}: promptfoo ${fmt(peer.at(-1)!)} cases/s at the endpoint (max ${endpoint.maxInFlight} in flight), ${fmt(peerWall.at(-1)!)} process start to exit; ` +
        `endpoint saw ${endpoint.shape().meanInFlight.toFixed(1)} in flight on average, answered after ${endpoint.shape().meanDelayMs.toFixed(1)} ms on average`,
    );
  };

  // Warm-up (JIT, connections, the database), not counted.
  await api.runToEnd({ prompt_version: 'bench-live@1', data_snapshot_id: snapshot.data_snapshot_id, provider: { type: 'openai', base_url: endpoint.url }, model: 'gpt-bench', concurrency: opts.concurrency, seed: 1, sample_size: Math.min(200, opts.cases) });
  for (let round = 1; round <= opts.rounds; round += 1) {
    if (round % 2 === 1) {
      await runEvalops(round);
      await runPromptfoo(round);
    } else {
      await runPromptfoo(round);
      await runEvalops(round);
    }
  }

  const lines = [
    ratioSummary(`eval-throughput vs ideal (${fmt(opts.cases)} cases, concurrency ${opts.concurrency}, ${LATENCY_MS} ms, ${flags.postgres ? 'PostgreSQL' : 'PGlite'})`, { name: 'evalops', value: median(evalops), unit: 'cases/s' }, { name: 'ideal', value: ideal, unit: 'cases/s' }, 0.9).line,
    `eval-throughput (cost): evalops server CPU ${median(evalopsCpuMs).toFixed(2)} ms per case (at ${fmt(ideal)} cases/s that is ${((median(evalopsCpuMs) * ideal) / 1000).toFixed(2)} of a core) INFO`,
  ];
  if ('reason' in promptfoo) lines.push(`eval-throughput vs promptfoo: not measured, promptfoo@${PROMPTFOO_VERSION} unavailable here: ${promptfoo.reason} INFO`);
  else {
    lines.push(ratioSummary('eval-throughput vs promptfoo (cache off)', { name: 'evalops', value: median(evalops), unit: 'cases/s' }, { name: `promptfoo ${PROMPTFOO_VERSION}`, value: median(peer), unit: 'cases/s' }, 1.0).line);
    lines.push(`eval-throughput (wall, start-up included): evalops submit-to-succeeded ${fmt(median(evalopsWall))} cases/s, promptfoo process start-to-exit ${fmt(median(peerWall))} cases/s INFO`);
  }
  printSummary(lines);
});
