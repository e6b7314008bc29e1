import { describe, expect, it } from 'vitest';
import { compareRuns, erfc, mcnemarTest, meanDifferenceInterval, normalQuantile, type CaseResult } from '../../../src/evals/run-compare.ts';

const cases = (rows: Array<[string, number | null, boolean | null, number, boolean]>): { base: CaseResult[]; head: CaseResult[] } => ({
  base: rows.map(([id, score, pass]) => ({ id, scores: { exact: { score, pass } } })),
  head: rows.map(([id, , , score, pass]) => ({ id, scores: { exact: { score, pass } } })),
});

describe('compareRuns on a hand-computed example', () => {
  // base: 1 1 0 0 1 ; head: 1 0 1 1 1 -> diffs 0 -1 1 1 0, mean 0.2
  // flips: c2 pass->fail (b = 1); c3, c4 fail->pass (c = 2)
  const { base, head } = cases([
    ['c1', 1, true, 1, true],
    ['c2', 1, true, 0, false],
    ['c3', 0, false, 1, true],
    ['c4', 0, false, 1, true],
    ['c5', 1, true, 1, true],
  ]);
  const result = compareRuns(base, head, { seed: 1 });
  const exact = result.scorers[0];

  it('computes means, the delta and pass rates', () => {
    expect(result.pairedCases).toBe(5);
    expect(exact?.scorer).toBe('exact');
    expect(exact?.baseMean).toBeCloseTo(0.6, 12);
    expect(exact?.headMean).toBeCloseTo(0.8, 12);
    expect(exact?.meanDelta).toBeCloseTo(0.2, 12);
    expect(exact?.basePassRate).toBeCloseTo(0.6, 12);
    expect(exact?.headPassRate).toBeCloseTo(0.8, 12);
  });

  it('runs McNemar on the flips: exact p = 2 * P(X <= 1 | n = 3) = 1, chi-square 0', () => {
    expect(exact?.mcnemar).toEqual({ passToFail: 1, failToPass: 2, exactP: 1, chiSquare: 0, chiSquareP: 1 });
  });

  it('lists regressions first', () => {
    expect(result.flipped.map((f) => `${f.id}:${f.from}->${f.to}`)).toEqual(['c2:pass->fail', 'c3:fail->pass', 'c4:fail->pass']);
    expect(result.flippedTotal).toBe(3);
  });

  it('gives a bootstrap interval around the mean, reproducible with the seed', () => {
    const ci = exact?.ci;
    expect(ci?.method).toBe('bootstrap');
    expect(ci?.resamples).toBe(2000);
    // Resampled means of {0,-1,1,1,0} lie in [-1, 1] on a grid of 0.2.
    expect(ci?.lower).toBeGreaterThanOrEqual(-1);
    expect(ci?.lower).toBeLessThanOrEqual(0.2);
    expect(ci?.upper).toBeGreaterThanOrEqual(0.2);
    expect(ci?.upper).toBeLessThanOrEqual(1);
    expect(compareRuns(base, head, { seed: 1 }).scorers[0]?.ci).toEqual(ci);
  });
});

describe('statistics', () => {
  it('McNemar exact and chi-square for 0 vs 4 flips', () => {
    const r = mcnemarTest(0, 4);
    expect(r.exactP).toBeCloseTo(0.125, 12); // 2 * (1/2)^4
    expect(r.chiSquare).toBeCloseTo(2.25, 12); // (|0 - 4| - 1)^2 / 4
    expect(r.chiSquareP).toBeCloseTo(0.133614, 5); // P(chi2_1 > 2.25) = 2 * (1 - Phi(1.5))
  });

  it('McNemar with no flips and with many (no underflow)', () => {
    expect(mcnemarTest(0, 0)).toEqual({ passToFail: 0, failToPass: 0, exactP: 1, chiSquare: null, chiSquareP: null });
    const big = mcnemarTest(2000, 2000);
    expect(big.exactP).toBeCloseTo(1, 6);
    expect(mcnemarTest(10, 3000).exactP).toBeLessThan(1e-100);
  });

  it('erfc and normalQuantile match tabulated values', () => {
    expect(erfc(0)).toBeCloseTo(1, 7);
    expect(erfc(1)).toBeCloseTo(0.157299207, 6);
    expect(erfc(-1)).toBeCloseTo(1.842700793, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 4);
  });

  it('a constant difference has a zero-width interval', () => {
    const ci = meanDifferenceInterval([0.2, 0.2, 0.2, 0.2], { seed: 3 });
    expect(ci.lower).toBeCloseTo(0.2, 12);
    expect(ci.upper).toBeCloseTo(0.2, 12);
  });

  it('uses the normal approximation above the bootstrap size limit', () => {
    const diffs = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const ci = meanDifferenceInterval(diffs, { maxBootstrapCases: 50 });
    // mean 0.5, sample sd = sqrt(25/99), se = sd / 10
    const se = Math.sqrt(25 / 99) / 10;
    expect(ci.method).toBe('normal');
    expect(ci.lower).toBeCloseTo(0.5 - 1.959964 * se, 4);
    expect(ci.upper).toBeCloseTo(0.5 + 1.959964 * se, 4);
  });
});

describe('pairing', () => {
  it('pairs by id, counts unpaired cases and skips errored scores', () => {
    const base: CaseResult[] = [
      { id: 'a', scores: { s: { score: 1, pass: true }, t: { score: 0.5, pass: null } } },
      { id: 'b', scores: { s: { score: null, pass: null } } },
      { id: 'only-base', scores: { s: { score: 1, pass: true } } },
    ];
    const head: CaseResult[] = [
      { id: 'b', scores: { s: { score: 0, pass: false } } },
      { id: 'a', scores: { s: { score: 0, pass: false }, t: { score: 1, pass: true } } },
      { id: 'only-head', scores: { s: { score: 0, pass: false } } },
    ];
    const result = compareRuns(base, head);
    expect(result.pairedCases).toBe(2);
    expect(result.onlyInBase).toBe(1);
    expect(result.onlyInHead).toBe(1);
    const s = result.scorers.find((x) => x.scorer === 's');
    expect(s?.pairedCases).toBe(1);
    expect(s?.meanDelta).toBe(-1);
    expect(s?.mcnemar.passToFail).toBe(1);
    const t = result.scorers.find((x) => x.scorer === 't');
    expect(t?.meanDelta).toBe(0.5);
    expect(t?.pairedPassCases).toBe(0);
    expect(t?.basePassRate).toBeNull();
  });
});
