import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

/**
 * Deterministic randomness for runs: which cases a sampled run evaluates, per-case seeds, and the
 * bootstrap of run comparisons. `Math.random` cannot be seeded, and the result must be identical
 * on every machine and Node version, so the generator is written here: xoshiro128** (Blackman &
 * Vigna), 128-bit state, period 2^128-1, passes BigCrush, a dozen lines of 32-bit integer math. Its
 * state is derived from SHA-256 of the seed, so any integer or string seed gives a well-mixed start
 * (seeds 1 and 2 do not produce correlated streams).
 */

export interface Rng {
  /** Uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** Uniform float in [0, 1) with 32 bits of precision. */
  next(): number;
  /** Uniform integer in [0, bound), without modulo bias; 1 <= bound <= 2^32. */
  nextInt(bound: number): number;
}

const TWO_32 = 2 ** 32;

/** A xoshiro128** generator seeded from `seed` (any integer or string). */
export function createRng(seed: number | string): Rng {
  const digest = createHash('sha256').update(canonicalJson(['evalops-rng', seed]), 'utf8').digest();
  return xoshiro128StarStar([digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)]);
}

/** xoshiro128** from an explicit 128-bit state (four uint32); exported for its reference test vector. */
export function xoshiro128StarStar(state: readonly [number, number, number, number]): Rng {
  let [s0, s1, s2, s3] = state.map((x) => x >>> 0) as [number, number, number, number];
  // The all-zero state is the generator's one fixed point; a SHA-256 prefix of zeros is practically
  // impossible, but the guard costs nothing.
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  return {
    nextUint32,
    next: () => nextUint32() / TWO_32,
    nextInt: (bound: number) => {
      if (!Number.isInteger(bound) || bound < 1 || bound > TWO_32) throw new RangeError(`nextInt: bound ${bound} out of range`);
      // Rejection sampling: drop the top sliver of values that would make low results more likely.
      const limit = TWO_32 - (TWO_32 % bound);
      for (;;) {
        const x = nextUint32();
        if (x < limit) return x % bound;
      }
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * `k` distinct indexes out of `0..n-1`, sorted ascending, the same for the same (n, k, seed) on
 * every run. Floyd's algorithm: k draws and O(k) memory, whatever n is. All indexes when k >= n.
 */
export function seededSample(n: number, k: number, seed: number | string): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`seededSample: n must be a non-negative integer, got ${n}`);
  if (!Number.isSafeInteger(k) || k < 0) throw new RangeError(`seededSample: k must be a non-negative integer, got ${k}`);
  if (n > TWO_32) throw new RangeError('seededSample: n above 2^32 is not supported');
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const rng = createRng(['sample', seed, n, k].join(':'));
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j += 1) {
    const t = rng.nextInt(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen].sort((a, b) => a - b);
}

/**
 * The seed sent to the provider for one case: a hash of (run seed, case id), so adding, removing or
 * reordering other cases never changes it. 31 bits, because some OpenAI-compatible servers store
 * the seed in a signed 32-bit integer.
 */
export function caseSeed(runSeed: number, caseId: string): number {
  const digest = createHash('sha256').update(canonicalJson(['case-seed', runSeed, caseId]), 'utf8').digest();
  return digest.readUInt32BE(0) & 0x7fffffff;
}
