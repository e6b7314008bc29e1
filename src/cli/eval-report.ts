import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { EvaluationRun } from '../evals/evaluation-service.ts';
import type { RunSummary } from '../evals/run-summary.ts';
import { type EvalApi, responseLines } from './eval-api.ts';
import { EXIT } from './exit-codes.ts';
import { renderTable } from './table-output.ts';

/** Following a run from the terminal: progress, the summary table, JUnit XML, the exit code. */

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

interface Progress {
  total?: number;
  done?: number;
  errors?: number;
  cached?: number;
}

/**
 * Polls the run until it ends. On a terminal, a progress bar on stderr; otherwise (CI logs) a
 * progress line every 10 s, so stdout stays the command's answer.
 */
export async function waitForRun(api: EvalApi, runId: string, options: { progress: boolean; pollMs?: number }): Promise<EvaluationRun> {
  const tty = options.progress && process.stderr.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: ' {bar} {percentage}% | {value}/{total} cases | {errors} errors | {cached} from the record | {status}', hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = 0;
  try {
    for (;;) {
      const run = await api.call<EvaluationRun>('GET', `/v1/evaluations/${runId}`);
      const p = (run.progress ?? {}) as Progress;
      const payload = { errors: p.errors ?? 0, cached: p.cached ?? 0, status: run.status };
      if (bar) {
        if (!started && p.total !== undefined) {
          bar.start(p.total, p.done ?? 0, payload);
          started = true;
        } else if (started) bar.update(p.done ?? 0, payload);
      } else if (options.progress && Date.now() - lastLine > 10_000 && p.total !== undefined) {
        lastLine = Date.now();
        process.stderr.write(`run ${runId}: ${run.status}, ${p.done ?? 0}/${p.total} cases, ${payload.errors} errors\n`);
      }
      if (FINAL.has(run.status)) {
        if (bar && started) bar.update(p.done ?? 0, payload);
        return run;
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 300));
    }
  } finally {
    bar?.stop();
  }
}

const num = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '' : v.toFixed(digits));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '' : `${(v * 100).toFixed(1)}%`);

/** The summary table printed at the end of `eval run` / `rerun`. */
export function renderRunReport(run: EvaluationRun): string {
  const lines = [`run ${run.run_id}: ${run.status} (${run.prompt_version}, ${run.data_snapshot_id.slice(0, 19)}…, ${run.provider}/${run.model}, ${run.mode}, seed ${run.seed})`];
  const s = run.summary as RunSummary | null;
  if (s) {
    const rows = Object.entries(s.scorers).map(([name, x]) => [name, x.type, num(x.mean), pct(x.pass_rate), x.passed, x.failed]);
    lines.push(renderTable(['scorer', 'type', 'mean', 'pass rate', 'passed', 'failed'], rows).replace(/\n\(\d+ rows?\)$/, ''));
    lines.push(
      `cases ${s.cases}, passed ${s.passed} (${pct(s.pass_rate)}), errors ${s.errors}; latency p50 ${s.latency_ms.p50 ?? '-'} ms, p95 ${s.latency_ms.p95 ?? '-'} ms; tokens ${s.tokens.total}; ` +
        `${s.execution.provider_calls} provider calls, ${s.execution.cached} answers from the record`,
    );
    for (const c of s.thresholds.checks) lines.push(`threshold ${c.scorer} ${c.metric} ${num(c.actual)} >= ${c.min}: ${c.pass ? 'PASS' : 'FAIL'}`);
  }
  if (run.error_message) lines.push(`error: ${run.error_message}`);
  if (run.mlflow) lines.push(`mlflow: ${JSON.stringify(run.mlflow)}`);
  return lines.join('\n');
}

/** 0 when the run succeeded and its thresholds passed; THRESHOLDS_FAILED or RUN_FAILED otherwise. */
export function exitCodeFor(run: EvaluationRun): number {
  if (run.status !== 'succeeded') return EXIT.RUN_FAILED;
  return run.thresholds_passed === false ? EXIT.THRESHOLDS_FAILED : EXIT.OK;
}

const xml = (text: string) =>
  text
    // Characters XML 1.0 cannot carry at all.
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

interface ResultLine {
  id: string;
  pass: boolean;
  error: string | null;
  latency_ms: number | null;
  scores: Record<string, { pass: boolean; reason: string }>;
}

/**
 * JUnit XML for CI: one test case per evaluation case (failure: the failing scorers' reasons;
 * error: the provider's sentence) and one per threshold. Results are streamed from the API.
 */
export async function writeJunitReport(api: EvalApi, run: EvaluationRun, file: string): Promise<void> {
  const s = run.summary as RunSummary | null;
  const out = createWriteStream(file);
  const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  const checks = s?.thresholds.checks ?? [];
  const caseFailures = s ? s.cases - s.passed - s.errors : 0;
  const thresholdFailures = checks.filter((c) => !c.pass).length;
  const name = `${run.prompt_version} ${run.run_id}`;
  await write('<?xml version="1.0" encoding="UTF-8"?>\n');
  await write(`<testsuites name="evalops" tests="${(s?.cases ?? 0) + checks.length}" failures="${caseFailures + thresholdFailures}" errors="${s?.errors ?? 0}">\n`);
  if (s) {
    await write(`  <testsuite name="${xml(name)}" tests="${s.cases}" failures="${caseFailures}" errors="${s.errors}" time="${(s.execution.duration_ms / 1000).toFixed(3)}">\n`);
    await write('    <properties>\n');
    for (const [k, v] of [['run_id', run.run_id], ['prompt_version', run.prompt_version], ['data_snapshot_id', run.data_snapshot_id], ['model', run.model], ['mode', run.mode], ['seed', String(run.seed)]]) {
      await write(`      <property name="${k}" value="${xml(v!)}"/>\n`);
    }
    await write('    </properties>\n');
    const res = await api.fetch(`/v1/evaluations/${run.run_id}/results`);
    for await (const text of responseLines(res)) {
      const r = JSON.parse(text) as ResultLine;
      const head = `    <testcase classname="${xml(run.prompt_version)}" name="${xml(r.id)}" time="${((r.latency_ms ?? 0) / 1000).toFixed(3)}"`;
      if (r.error !== null) await write(`${head}>\n      <error type="provider" message="${xml(r.error.slice(0, 500))}">${xml(r.error)}</error>\n    </testcase>\n`);
      else if (!r.pass) {
        const failing = Object.entries(r.scores).filter(([, x]) => !x.pass).map(([n, x]) => `${n}: ${x.reason}`);
        await write(`${head}>\n      <failure type="score" message="${xml(failing.join('; ').slice(0, 500))}">${xml(failing.join('\n'))}</failure>\n    </testcase>\n`);
      } else await write(`${head}/>\n`);
    }
    await write('  </testsuite>\n');
  }
  await write(`  <testsuite name="thresholds" tests="${checks.length}" failures="${thresholdFailures}" errors="0">\n`);
  for (const c of checks) {
    const head = `    <testcase classname="thresholds" name="${xml(`${c.scorer} ${c.metric} >= ${c.min}`)}"`;
    await write(c.pass ? `${head}/>\n` : `${head}>\n      <failure type="threshold" message="${xml(`${c.scorer} ${c.metric} is ${c.actual ?? 'n/a'}, below ${c.min}`)}"/>\n    </testcase>\n`);
  }
  await write('  </testsuite>\n</testsuites>\n');
  out.end();
  await finished(out);
}
