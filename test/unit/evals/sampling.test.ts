import { describe, expect, it } from 'vitest';
import { caseSeed, createRng, seededSample, xoshiro128StarStar } from '../../../src/evals/sampling.ts';

describe('createRng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = createRng(1);
    const b = createRng(1);
    const c = createRng(2);
    const seqA = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(seqA);
  });

  it('matches the xoshiro128** reference output for state {1, 2, 3, 4}', () => {
    const rng = xoshiro128StarStar([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => rng.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('keeps producing these exact values (a change here breaks reproducibility of past runs)', () => {
    const rng = createRng(42);
    expect(Array.from({ length: 3 }, () => rng.nextUint32())).toEqual([2158930994, 3662415131, 217489807]);
    expect(seededSample(100, 5, 42)).toEqual([4, 13, 40, 68, 79]);
    expect(caseSeed(42, 'case-1')).toBe(1495883489);
  });

  it('nextInt stays in range and is roughly uniform', () => {
    const rng = createRng('uniform');
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i += 1) {
      const x = rng.nextInt(10);
      counts[x] = (counts[x] ?? 0) + 1;
    }
    for (const count of counts) {
      // expected 10,000 each; 5 sigma is about 475
      expect(Math.abs(count - 10_000)).toBeLessThan(600);
    }
    expect(() => rng.nextInt(0)).toThrow(RangeError);
  });

  it('next() is in [0, 1)', () => {
    const rng = createRng(3);
    for (let i = 0; i < 1000; i += 1) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});

describe('seededSample', () => {
  it('returns k distinct sorted indexes, the same for the same seed', () => {
    const a = seededSample(1000, 50, 7);
    expect(a).toHaveLength(50);
    expect(new Set(a).size).toBe(50);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(a.every((i) => i >= 0 && i < 1000)).toBe(true);
    expect(seededSample(1000, 50, 7)).toEqual(a);
    expect(seededSample(1000, 50, 8)).not.toEqual(a);
  });

  it('returns everything when k >= n and nothing when k = 0', () => {
    expect(seededSample(5, 10, 1)).toEqual([0, 1, 2, 3, 4]);
    expect(seededSample(5, 0, 1)).toEqual([]);
    expect(seededSample(0, 3, 1)).toEqual([]);
  });

  it('picks every index about equally often across seeds', () => {
    const counts = new Array<number>(20).fill(0);
    for (let seed = 0; seed < 2000; seed += 1) for (const i of seededSample(20, 5, seed)) counts[i] = (counts[i] ?? 0) + 1;
    // expected 500 each
    for (const count of counts) expect(Math.abs(count - 500)).toBeLessThan(120);
  });

  it('rejects invalid sizes', () => {
    expect(() => seededSample(-1, 1, 0)).toThrow(RangeError);
    expect(() => seededSample(10, 1.5, 0)).toThrow(RangeError);
  });
});

describe('caseSeed', () => {
  it('depends only on the run seed and the case id', () => {
    expect(caseSeed(42, 'case-1')).toBe(caseSeed(42, 'case-1'));
    expect(caseSeed(42, 'case-1')).not.toBe(caseSeed(42, 'case-2'));
    expect(caseSeed(42, 'case-1')).not.toBe(caseSeed(43, 'case-1'));
    // no ambiguity between (4, "2x") and (42, "x")
    expect(caseSeed(4, '2x')).not.toBe(caseSeed(42, 'x'));
  });

  it('is a non-negative 31-bit integer', () => {
    for (let i = 0; i < 1000; i += 1) {
      const seed = caseSeed(i, `id-${i}`);
      expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31).toBe(true);
    }
  });
});
