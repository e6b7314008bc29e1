import type { TokenUsage } from './providers/provider.ts';

/**
 * The figures of summary.json, accumulated case by case in constant memory per scorer (latencies
 * are the one list that grows: 8 bytes a case), and the pass thresholds checked against them.
 */

export interface CaseOutcome {
  error: string | null;
  pass: boolean;
  latencyMs: number | null;
  tokens: TokenUsage | null;
  cached: boolean;
  scores: Record<string, { score: number | null; pass: boolean }>;
}

/** `{scorer: 0.9}` (minimum pass rate) or `{scorer: {pass_rate: 0.9, mean: 0.8}}`. */
export type Thresholds = Record<string, number | { pass_rate?: number | undefined; mean?: number | undefined }>;

export interface ThresholdCheck {
  scorer: string;
  metric: 'pass_rate' | 'mean';
  min: number;
  actual: number | null;
  pass: boolean;
}

export interface ScorerSummary {
  type: string;
  /** Cases this scorer scored (errored cases are not scored). */
  scored: number;
  /** Mean score over the scored cases. */
  mean: number | null;
  /**
   * passed / all cases: errored cases count as failures, so a run where half the cases errored
   * cannot pass a 0.9 gate.
   */
  pass_rate: number | null;
  passed: number;
  failed: number;
}

export interface RunSummary {
  run_id: string;
  prompt_version: string;
  data_snapshot_id: string;
  model: string;
  mode: 'live' | 'replay';
  cases: number;
  /** Cases answered and scored (not errored). */
  completed: number;
  errors: number;
  /** Cases where every scorer passed. */
  passed: number;
  pass_rate: number | null;
  scorers: Record<string, ScorerSummary>;
  latency_ms: { p50: number | null; p95: number | null; mean: number | null; max: number | null };
  tokens: { prompt: number; completion: number; total: number; cases_without_usage: number };
  thresholds: { passed: boolean; checks: ThresholdCheck[] };
  /** How this run got its answers: differs between a live run and its replay, unlike results.jsonl. */
  execution: { cached: number; provider_calls: number; started_at: string; finished_at: string; duration_ms: number };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

const ratio = (a: number, b: number) => (b === 0 ? null : a / b);

export class SummaryAccumulator {
  private cases = 0;
  private errors = 0;
  private passed = 0;
  private cached = 0;
  private latencies = new Float64Array(1024);
  private latencyCount = 0;
  private latencySum = 0;
  private readonly tokens = { prompt: 0, completion: 0, total: 0, cases_without_usage: 0 };
  private readonly scorers = new Map<string, { type: string; scored: number; sum: number; passed: number; failed: number }>();

  constructor(scorers: ReadonlyArray<{ name: string; type: string }>) {
    for (const s of scorers) this.scorers.set(s.name, { type: s.type, scored: 0, sum: 0, passed: 0, failed: 0 });
  }

  add(outcome: CaseOutcome): void {
    this.cases += 1;
    if (outcome.cached) this.cached += 1;
    if (outcome.error !== null) {
      this.errors += 1;
      return;
    }
    if (outcome.pass) this.passed += 1;
    if (outcome.latencyMs !== null) {
      if (this.latencyCount === this.latencies.length) {
        const grown = new Float64Array(this.latencies.length * 2);
        grown.set(this.latencies);
        this.latencies = grown;
      }
      this.latencies[this.latencyCount++] = outcome.latencyMs;
      this.latencySum += outcome.latencyMs;
    }
    if (outcome.tokens) {
      this.tokens.prompt += outcome.tokens.prompt;
      this.tokens.completion += outcome.tokens.completion;
      this.tokens.total += outcome.tokens.total;
    } else {
      this.tokens.cases_without_usage += 1;
    }
    for (const [name, s] of Object.entries(outcome.scores)) {
      const acc = this.scorers.get(name);
      if (!acc) continue;
      if (s.score !== null) {
        acc.scored += 1;
        acc.sum += s.score;
      }
      if (s.pass) acc.passed += 1;
      else acc.failed += 1;
    }
  }

  get counts(): { done: number; errors: number; passed: number; cached: number } {
    return { done: this.cases, errors: this.errors, passed: this.passed, cached: this.cached };
  }

  finish(base: Pick<RunSummary, 'run_id' | 'prompt_version' | 'data_snapshot_id' | 'model' | 'mode'>, thresholds: Thresholds | undefined, timing: { startedAt: Date; finishedAt: Date }): RunSummary {
    const sorted = this.latencies.slice(0, this.latencyCount).sort();
    const scorers: Record<string, ScorerSummary> = {};
    for (const [name, s] of this.scorers) {
      scorers[name] = { type: s.type, scored: s.scored, mean: ratio(s.sum, s.scored), pass_rate: ratio(s.passed, this.cases), passed: s.passed, failed: s.failed };
    }
    const checks = checkThresholds(thresholds, scorers);
    return {
      ...base,
      cases: this.cases,
      completed: this.cases - this.errors,
      errors: this.errors,
      passed: this.passed,
      pass_rate: ratio(this.passed, this.cases),
      scorers,
      latency_ms: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), mean: ratio(this.latencySum, this.latencyCount), max: sorted.length ? sorted[sorted.length - 1]! : null },
      tokens: { ...this.tokens },
      thresholds: { passed: checks.every((c) => c.pass), checks },
      execution: {
        cached: this.cached,
        provider_calls: this.cases - this.cached,
        started_at: timing.startedAt.toISOString(),
        finished_at: timing.finishedAt.toISOString(),
        duration_ms: timing.finishedAt.getTime() - timing.startedAt.getTime(),
      },
    };
  }
}

/** Checks each threshold against the scorer summaries; a scorer that never scored fails its checks. */
export function checkThresholds(thresholds: Thresholds | undefined, scorers: Record<string, ScorerSummary>): ThresholdCheck[] {
  const checks: ThresholdCheck[] = [];
  for (const [scorer, rule] of Object.entries(thresholds ?? {})) {
    const s = scorers[scorer];
    const mins = typeof rule === 'number' ? { pass_rate: rule } : rule;
    for (const metric of ['pass_rate', 'mean'] as const) {
      const min = mins[metric];
      if (min === undefined) continue;
      const actual = s ? s[metric] : null;
      checks.push({ scorer, metric, min, actual, pass: actual !== null && actual >= min });
    }
  }
  return checks;
}
