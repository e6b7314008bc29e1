import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SUMMARY_LINE } from './support/report.ts';

/**
 * Runs every benchmark in sequence, each as its own process (a fresh heap and JIT, and its own
 * cleanup), echoes their output and ends with all their summary lines together.
 * `--quick` is passed on for a short smoke run. Exit code 1 when a benchmark could not run to the
 * end; a missed target is reported as FAIL in its line, not as an exit code (figures on a shared
 * 2-core machine are too noisy to gate on).
 */
const SCRIPTS = ['health-throughput.ts', 'jobs-throughput.ts', 'claim-scaling.ts', 'eval-throughput.ts', 'eval-replay.ts', 'eval-cases.ts', 'eval-memory.ts', 'queue-throughput.ts', 'auth-overhead.ts', 'scorer-worst-case.ts', 'sql-isolation.ts'];
/** Bound on one benchmark, cleanup included. */
const SCRIPT_TIMEOUT_MS = 30 * 60_000;

const forwarded = process.argv.slice(2).filter((a) => a === '--quick');
const unknown = process.argv.slice(2).filter((a) => a !== '--quick');
if (unknown.length) {
  console.error(`run-all accepts only --quick (got ${unknown.join(' ')}); run a benchmark alone for its own options`);
  process.exit(2);
}

let current: ChildProcess | undefined;
let interrupted = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) return;
  interrupted = true;
  console.error(`run-all: ${signal}: stopping the running benchmark (it cleans up after itself)`);
  const child = current;
  if (!child || child.exitCode !== null || child.signalCode !== null) process.exit(130);
  child.kill(signal);
  const force = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.once('exit', () => {
    clearTimeout(force);
    process.exit(130);
  });
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

function runScript(script: string): Promise<{ code: number | null; summaries: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, script), ...forwarded], {
      cwd: path.resolve(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    current = child;
    const summaries: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      console.log(line);
      if (SUMMARY_LINE.test(line)) summaries.push(line);
    });
    const timer = setTimeout(() => {
      console.error(`run-all: ${script} ran past ${SCRIPT_TIMEOUT_MS / 60_000} min; stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
    }, SCRIPT_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      current = undefined;
      resolve({ code, summaries });
    });
  });
}

const all: string[] = [];
const broken: string[] = [];
for (const script of SCRIPTS) {
  console.log(`\n=== ${script} ===`);
  const { code, summaries } = await runScript(script);
  if (interrupted) break;
  if (code !== 0) broken.push(`${script} (exit ${code})`);
  all.push(...summaries);
}

console.log(`\n=== summary (${new Date().toISOString()}) ===`);
for (const line of all) console.log(line);
const count = (word: string) => all.filter((l) => l.endsWith(` ${word}`)).length;
console.log(`targets: ${count('PASS')} met, ${count('FAIL')} missed; ${count('INFO')} figure(s) reported without a target`);
if (broken.length) {
  console.log(`did not complete: ${broken.join(', ')}`);
  process.exitCode = 1;
}
