import { createRng } from './sampling.ts';

/**
 * Case-by-case comparison of two runs over the same cases (a base and a head): per-scorer mean
 * deltas with a paired bootstrap confidence interval, McNemar's test on pass/fail flips, and the
 * flipped cases (regressions first). Pure: the caller streams both results files into arrays.
 */

export interface CaseScore {
  /** Null when the case errored or the scorer could not run. */
  score: number | null;
  pass: boolean | null;
}

export interface CaseResult {
  id: string;
  scores: Record<string, CaseScore>;
}

export interface CompareOptions {
  /** Seed of the bootstrap resampling; the same inputs and seed give the same interval. @defaultValue 0 */
  seed?: number;
  /** @defaultValue 2000 */
  resamples?: number;
  /** @defaultValue 0.95 */
  confidence?: number;
  /** Longest flipped-case list returned (counts are always complete). @defaultValue 1000 */
  maxFlipped?: number;
  /**
   * Above this many paired cases the interval uses the normal approximation (mean +- z * standard
   * error), which the bootstrap converges to anyway, instead of resamples * cases draws.
   * @defaultValue 20000
   */
  maxBootstrapCases?: number;
}

export interface McNemarResult {
  /** Cases that passed in base and fail in head. */
  passToFail: number;
  /** Cases that failed in base and pass in head. */
  failToPass: number;
  /** Two-sided exact binomial p-value (always computed). */
  exactP: number;
  /** Chi-square statistic with continuity correction; null when there are no flips. */
  chiSquare: number | null;
  chiSquareP: number | null;
}

export interface ConfidenceInterval {
  lower: number;
  upper: number;
  confidence: number;
  method: 'bootstrap' | 'normal';
  resamples: number | null;
}

export interface ScorerComparison {
  scorer: string;
  /** Cases with a numeric score in both runs (the ones the means and interval use). */
  pairedCases: number;
  baseMean: number | null;
  headMean: number | null;
  /** head - base. */
  meanDelta: number | null;
  ci: ConfidenceInterval | null;
  /** Cases with a pass flag in both runs. */
  pairedPassCases: number;
  basePassRate: number | null;
  headPassRate: number | null;
  mcnemar: McNemarResult;
}

export interface FlippedCase {
  id: string;
  scorer: string;
  from: 'pass' | 'fail';
  to: 'pass' | 'fail';
  baseScore: number | null;
  headScore: number | null;
}

export interface RunComparison {
  /** Case ids present in both runs. */
  pairedCases: number;
  onlyInBase: number;
  onlyInHead: number;
  scorers: ScorerComparison[];
  /** Pass -> fail flips first, then fail -> pass, each in head order. */
  flipped: FlippedCase[];
  flippedTotal: number;
}

/** Compares `head` against `base`, pairing cases by id. */
export function compareRuns(base: readonly CaseResult[], head: readonly CaseResult[], options: CompareOptions = {}): RunComparison {
  const baseById = new Map<string, CaseResult>();
  for (const item of base) baseById.set(item.id, item);
  const pairs: Array<[CaseResult, CaseResult]> = [];
  const headIds = new Set<string>();
  for (const item of head) {
    headIds.add(item.id);
    const other = baseById.get(item.id);
    if (other !== undefined) pairs.push([other, item]);
  }
  let onlyInBase = 0;
  for (const id of baseById.keys()) if (!headIds.has(id)) onlyInBase += 1;

  const scorerNames: string[] = [];
  const seen = new Set<string>();
  for (const item of [...base, ...head]) {
    for (const name of Object.keys(item.scores)) {
      if (!seen.has(name)) {
        seen.add(name);
        scorerNames.push(name);
      }
    }
  }

  const regressions: FlippedCase[] = [];
  const improvements: FlippedCase[] = [];
  const scorers = scorerNames.map((name) => compareScorer(name, pairs, options, regressions, improvements));
  const maxFlipped = options.maxFlipped ?? 1000;
  const flipped = [...regressions, ...improvements];
  return {
    pairedCases: pairs.length,
    onlyInBase,
    onlyInHead: head.length - pairs.length,
    scorers,
    flipped: flipped.slice(0, maxFlipped),
    flippedTotal: flipped.length,
  };
}

function compareScorer(
  name: string,
  pairs: ReadonlyArray<[CaseResult, CaseResult]>,
  options: CompareOptions,
  regressions: FlippedCase[],
  improvements: FlippedCase[],
): ScorerComparison {
  const diffs: number[] = [];
  let baseSum = 0;
  let headSum = 0;
  let passPairs = 0;
  let basePasses = 0;
  let headPasses = 0;
  let passToFail = 0;
  let failToPass = 0;
  for (const [b, h] of pairs) {
    const bs = b.scores[name];
    const hs = h.scores[name];
    if (bs === undefined || hs === undefined) continue;
    if (isScore(bs.score) && isScore(hs.score)) {
      diffs.push(hs.score - bs.score);
      baseSum += bs.score;
      headSum += hs.score;
    }
    if (typeof bs.pass === 'boolean' && typeof hs.pass === 'boolean') {
      passPairs += 1;
      if (bs.pass) basePasses += 1;
      if (hs.pass) headPasses += 1;
      if (bs.pass !== hs.pass) {
        const flip: FlippedCase = {
          id: h.id,
          scorer: name,
          from: bs.pass ? 'pass' : 'fail',
          to: hs.pass ? 'pass' : 'fail',
          baseScore: bs.score,
          headScore: hs.score,
        };
        if (bs.pass) {
          passToFail += 1;
          regressions.push(flip);
        } else {
          failToPass += 1;
          improvements.push(flip);
        }
      }
    }
  }
  const n = diffs.length;
  return {
    scorer: name,
    pairedCases: n,
    baseMean: n === 0 ? null : baseSum / n,
    headMean: n === 0 ? null : headSum / n,
    meanDelta: n === 0 ? null : mean(diffs),
    ci: n === 0 ? null : meanDifferenceInterval(diffs, { ...options, seed: options.seed ?? 0 }, name),
    pairedPassCases: passPairs,
    basePassRate: passPairs === 0 ? null : basePasses / passPairs,
    headPassRate: passPairs === 0 ? null : headPasses / passPairs,
    mcnemar: mcnemarTest(passToFail, failToPass),
  };
}

/**
 * Confidence interval of the mean of paired differences: percentile bootstrap (seeded, per scorer
 * so one scorer's interval does not depend on which other scorers ran), or the normal
 * approximation for very large runs.
 */
export function meanDifferenceInterval(
  diffs: readonly number[],
  options: CompareOptions,
  stream = '',
): ConfidenceInterval {
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 2000;
  const alpha = 1 - confidence;
  const n = diffs.length;
  if (n > (options.maxBootstrapCases ?? 20_000)) {
    const m = mean(diffs);
    let squares = 0;
    for (const d of diffs) squares += (d - m) ** 2;
    const standardError = Math.sqrt(squares / (n - 1) / n);
    const z = normalQuantile(1 - alpha / 2);
    return { lower: m - z * standardError, upper: m + z * standardError, confidence, method: 'normal', resamples: null };
  }
  const rng = createRng(`bootstrap:${options.seed ?? 0}:${stream}`);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r += 1) {
    let sum = 0;
    for (let i = 0; i < n; i += 1) sum += diffs[rng.nextInt(n)] as number;
    means[r] = sum / n;
  }
  means.sort();
  return {
    lower: quantile(means, alpha / 2),
    upper: quantile(means, 1 - alpha / 2),
    confidence,
    method: 'bootstrap',
    resamples,
  };
}

/**
 * McNemar's test on discordant pairs: exact two-sided binomial p-value (b + c trials, p = 1/2),
 * and the continuity-corrected chi-square with 1 degree of freedom.
 */
export function mcnemarTest(passToFail: number, failToPass: number): McNemarResult {
  const n = passToFail + failToPass;
  if (n === 0) return { passToFail, failToPass, exactP: 1, chiSquare: null, chiSquareP: null };
  const k = Math.min(passToFail, failToPass);
  // Sum the binomial tail in log space: 2^-n underflows for a few thousand flips.
  let logTerm = -n * Math.LN2;
  let tail = Math.exp(logTerm);
  for (let i = 0; i < k; i += 1) {
    logTerm += Math.log(n - i) - Math.log(i + 1);
    tail += Math.exp(logTerm);
  }
  const exactP = Math.min(1, 2 * tail);
  const chiSquare = Math.max(0, Math.abs(passToFail - failToPass) - 1) ** 2 / n;
  // The erfc fit is off by up to 1.2e-7, which could put a p-value just above 1.
  const chiSquareP = Math.min(1, Math.max(0, erfc(Math.sqrt(chiSquare / 2))));
  return { passToFail, failToPass, exactP, chiSquare, chiSquareP };
}

/** Complementary error function (Numerical Recipes' Chebyshev fit, fractional error below 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z - 1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(poly);
  return x >= 0 ? r : 2 - r;
}

/** Inverse of the standard normal CDF, by bisection on `erfc` (only used for the large-run interval). */
export function normalQuantile(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 100; i += 1) {
    const mid = (lo + hi) / 2;
    const cdf = 1 - erfc(mid / Math.SQRT2) / 2;
    if (cdf < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Linear-interpolation quantile (R type 7) of sorted values. */
function quantile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return (sorted[lo] as number) + (h - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function isScore(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
