/** Number formatting, statistics and the one-line summaries every benchmark ends with. */

export function fmt(value: number, fractionDigits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export type Verdict = 'PASS' | 'FAIL' | 'INFO';

/** Summary lines end with one of these words; run-all collects the lines that do. */
export const SUMMARY_LINE = / (PASS|FAIL|INFO)$/;

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

/**
 * `label: A vs B = ratio (target >= min) PASS`; with no `min` the ratio is reported as INFO.
 * A ratio under the target is FAIL.
 */
export function ratioSummary(label: string, subject: Figure, baseline: Figure, min?: number): { line: string; verdict: Verdict; ratio: number } {
  const ratio = subject.value / baseline.value;
  const verdict: Verdict = min === undefined ? 'INFO' : ratio >= min ? 'PASS' : 'FAIL';
  const target = min === undefined ? 'no target' : `target >= ${min}`;
  const line = `${label}: ${subject.name} ${fmt(subject.value)} ${subject.unit} vs ${baseline.name} ${fmt(baseline.value)} ${baseline.unit} = ${ratio.toFixed(2)} (${target}) ${verdict}`;
  return { line, verdict, ratio };
}

/** Prints a summary line under a rule so it stands out in long output. */
export function printSummary(lines: readonly string[]): void {
  console.log('-'.repeat(72));
  for (const line of lines) console.log(line);
}

/** Logs a progress line with the time since the benchmark started. */
export function note(message: string): void {
  const seconds = (performance.now() / 1000).toFixed(1).padStart(6);
  console.log(`[${seconds}s] ${message}`);
}
