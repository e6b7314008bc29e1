import { MAX_JSON_OUTPUT_CHARS } from '../src/evals/scorers/json-output.ts';
import { MAX_TEXT_CHARS } from '../src/evals/scorers/linear-regex.ts';
import { createScorers, parseScorerList } from '../src/evals/scorers/scorer-factory.ts';
import type { Scorer } from '../src/evals/scorers/scorer.ts';
import { MAX_SIMILARITY_CHARS } from '../src/evals/scorers/similarity-scorer.ts';
import { readOptions } from './support/options.ts';
import { fmt, median, note, printSummary } from './support/report.ts';

/**
 * The worst cases of scoring one case, on inputs that double in size up to each scorer's bound:
 * the pathological regex `^(a+)+$` (25 s for 29 characters on V8's backtracking engine), a regex
 * with a large program, a JSON Schema with `pattern` and `uniqueItems` over objects, and the
 * similarity scorer (quadratic, run in slices). For each size: the time per case, the longest
 * stretch the event loop was held (setImmediate gaps, in CPU time), and a baseline measured in the same run on
 * the same input: `String.prototype.includes` scanning the whole text (for the JSON case,
 * `JSON.parse` of it). Linear growth shows as a ratio per doubling near 2.
 */

const { values, quick } = readOptions(
  'scorer-worst-case.ts',
  { reps: 5, from: 8_192 },
  { reps: 'repetitions per size (the median is reported)', from: 'smallest input, in characters (doubled up to each bound)' },
  { reps: 3, from: 32_768 },
);

interface Row {
  size: number;
  ms: number;
  blockMs: number;
  baselineMs: number;
}

const one = (config: Record<string, unknown>): Scorer => createScorers(parseScorerList([{ name: 's', ...config }]))[0]!;

/**
 * Awaits `work` while a setImmediate chain measures the longest gap: how long the loop was held.
 * Each gap counts the CPU the process used in it (when less than the wall time): on a shared
 * 2-core machine the scheduler also stops the process for other work, which is not our holding.
 */
async function timed(work: () => Promise<unknown>): Promise<{ ms: number; blockMs: number }> {
  let longest = 0;
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let running = true;
  const gap = (): void => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    longest = Math.max(longest, Math.min(now - last, (cpu.user + cpu.system) / 1000));
    last = now;
    lastCpu = process.cpuUsage();
  };
  const tick = (): void => {
    gap();
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  running = false;
  gap();
  return { ms, blockMs: Math.min(longest, ms) };
}

function syncMs(work: () => unknown): number {
  const started = performance.now();
  work();
  return performance.now() - started;
}

async function series(label: string, scorer: Scorer, sizes: number[], input: (size: number) => { output: string; expected?: unknown }, baseline: (output: string) => unknown): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of sizes) {
    const { output, expected } = input(size);
    const runs: Array<{ ms: number; blockMs: number; baselineMs: number }> = [];
    // One untimed run warms the JIT and the DFA cache, as a run of many cases would.
    await scorer.score({ output, expected, vars: {} });
    for (let r = 0; r < values.reps; r += 1) {
      const baselineMs = syncMs(() => baseline(output));
      const { ms, blockMs } = await timed(() => scorer.score({ output, expected, vars: {} }));
      runs.push({ ms, blockMs, baselineMs });
    }
    const row = { size, ms: median(runs.map((r) => r.ms)), blockMs: median(runs.map((r) => r.blockMs)), baselineMs: median(runs.map((r) => r.baselineMs)) };
    rows.push(row);
    note(`${label} ${fmt(size)} chars: ${row.ms.toFixed(2)} ms per case (loop held ${row.blockMs.toFixed(2)} ms), baseline ${row.baselineMs.toFixed(3)} ms`);
  }
  return rows;
}

const doublings = (from: number, to: number): number[] => {
  const out: number[] = [];
  for (let size = from; size <= to; size *= 2) out.push(size);
  return out;
};

/** Median time ratio between consecutive sizes: 2 is linear, 4 quadratic. */
const perDoubling = (rows: Row[]): number => median(rows.slice(1).map((row, i) => row.ms / Math.max(rows[i]!.ms, 1e-6)));

function summary(label: string, rows: Row[], maxPerDoubling: number, maxBlockMs: number): string {
  const last = rows[rows.length - 1]!;
  const growth = perDoubling(rows);
  const verdict = growth <= maxPerDoubling && last.blockMs <= maxBlockMs ? 'PASS' : 'FAIL';
  return (
    `${label}: x${growth.toFixed(2)} per doubling (target <= ${maxPerDoubling}); at ${fmt(last.size)} chars ${last.ms.toFixed(2)} ms per case, ` +
    `loop held ${last.blockMs.toFixed(2)} ms (target <= ${maxBlockMs}) vs baseline ${last.baselineMs.toFixed(3)} ms = ${(last.ms / Math.max(last.baselineMs, 1e-6)).toFixed(0)}x ${verdict}`
  );
}

const summaries: string[] = [];
const top = quick ? 131_072 : MAX_TEXT_CHARS;
const includesBaseline = (output: string) => output.includes('\u0000');

// V8's own engine on the same pattern, for the record: each two more characters quadruple the time.
for (const n of quick ? [18, 20] : [20, 22, 24]) {
  const text = `${'a'.repeat(n)}!`;
  const ms = syncMs(() => /^(a+)+$/.test(text));
  note(`V8 backtracking, /^(a+)+$/ on ${n} a's and a '!': ${ms.toFixed(1)} ms`);
  if (n === (quick ? 20 : 24)) summaries.push(`regex baseline: V8's backtracking engine takes ${fmt(ms)} ms for ${n + 1} characters of ^(a+)+$ (x4 per 2 characters) INFO`);
}

const sizes = doublings(values.from, top);
const pathological = await series('regex ^(a+)+$', one({ type: 'regex', pattern: '^(a+)+$' }), sizes, (n) => ({ output: `${'a'.repeat(n - 1)}!` }), includesBaseline);
summaries.push(summary('regex ^(a+)+$ (no match)', pathological, 2.5, 10));

const matching = await series('regex (a|aa)+$ matching', one({ type: 'regex', pattern: '(a|aa)+$' }), sizes, (n) => ({ output: 'a'.repeat(n) }), includesBaseline);
summaries.push(summary('regex (a|aa)+$ (match, located when small)', matching, 2.5, 10));

const wide = await series('regex \\w{1,200}\\d (403 instructions)', one({ type: 'regex', pattern: '\\w{1,200}\\d' }), sizes, (n) => ({ output: 'a'.repeat(n) }), includesBaseline);
summaries.push(summary('regex \\w{1,200}\\d (large program, no match)', wide, 2.5, 10));

// A pattern whose DFA has 2^20 states: RE2 bounds its state cache and keeps going.
const ab = (n: number) => {
  let x = 12345;
  let text = '';
  for (let i = 0; i < n; i += 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    text += x % 2 ? 'a' : 'b';
  }
  return text;
};
const explosive = await series('regex [ab]*a[ab]{20}$ (DFA blow-up)', one({ type: 'regex', pattern: '[ab]*a[ab]{20}$' }), sizes, (n) => ({ output: `${ab(n - 1)}c` }), includesBaseline);
summaries.push(summary('regex [ab]*a[ab]{20}$ (DFA state blow-up, no match)', explosive, 2.5, 10));

const jsonSizes = doublings(values.from, quick ? 131_072 : MAX_JSON_OUTPUT_CHARS);
const schema = one({ type: 'json_schema', schema: { type: 'array', uniqueItems: true, items: { type: 'object', properties: { k: { type: 'string', pattern: '^(a+)+$' } } } } });
const objects = (n: number) => {
  const item = (i: number) => ({ k: `${'a'.repeat(16)}!`, i });
  const count = Math.floor((n - 2) / (JSON.stringify(item(n)).length + 1));
  return { output: JSON.stringify(Array.from({ length: count }, (_, i) => item(i))) };
};
const json = await series('json_schema uniqueItems + pattern', schema, jsonSizes, objects, (output) => JSON.parse(output));
summaries.push(summary('json_schema uniqueItems over objects + pattern ^(a+)+$ (baseline JSON.parse)', json, 2.5, 20));

const simSizes = doublings(quick ? 2_500 : 1_250, MAX_SIMILARITY_CHARS);
const similarity = await series('similarity', one({ type: 'similarity' }), simSizes, (n) => ({ output: 'ab'.repeat(n / 2), expected: 'ba'.repeat(n / 2) }), includesBaseline);
const simLast = similarity[similarity.length - 1]!;
summaries.push(
  `similarity (quadratic by nature, run in slices): x${perDoubling(similarity).toFixed(2)} per doubling; at ${fmt(simLast.size)} chars ${simLast.ms.toFixed(0)} ms per case, ` +
    `loop held ${simLast.blockMs.toFixed(2)} ms (target <= 10) ${simLast.blockMs <= 10 ? 'PASS' : 'FAIL'}`,
);

printSummary(summaries);
