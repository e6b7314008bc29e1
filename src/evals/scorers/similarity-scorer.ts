import { expectedText, noExpected, normaliseText, round, type Scorer, type TextNormalisation } from './scorer.ts';

export interface SimilarityScorerOptions extends TextNormalisation {
  /** Compare with this text instead of the case's expected value. */
  value?: string;
  /** Pass when the similarity is at least this. @defaultValue 0.8 */
  threshold?: number;
}

/**
 * Longest text (in code points, after normalisation) the similarity scorer compares: edit distance
 * costs n x m steps (2.5 to 6 ns each), so two texts at the limit take about 0.3 to 0.6 s of CPU, spent in
 * slices of CELLS_PER_SLICE between which the event loop turns. Longer texts fail the scorer, saying so.
 */
export const MAX_SIMILARITY_CHARS = 10_000;
/** Steps of the edit-distance table computed before yielding to the event loop: under 1 ms once optimised. */
const CELLS_PER_SLICE = 250_000;

/**
 * Levenshtein distance over Unicode code points (so an emoji counts as one edit), in O(n*m) time
 * and O(min(n, m)) memory after stripping the common prefix and suffix. `pause`, when given, is
 * awaited every CELLS_PER_SLICE steps so a long comparison never holds the event loop.
 */
export function levenshtein(a: string, b: string): number;
export function levenshtein(a: string, b: string, pause: () => Promise<void>): Promise<number>;
export function levenshtein(a: string, b: string, pause?: () => Promise<void>): number | Promise<number> {
  const steps = distanceSteps(a, b);
  let result = steps.next();
  if (pause === undefined) {
    while (!result.done) result = steps.next();
    return result.value;
  }
  return (async () => {
    while (!result.done) {
      await pause();
      result = steps.next();
    }
    return result.value;
  })();
}

/** The edit-distance computation, suspended every CELLS_PER_SLICE steps; returns the distance. */
function* distanceSteps(a: string, b: string): Generator<void, number, void> {
  let x = Array.from(a);
  let y = Array.from(b);
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start += 1;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) {
    endX -= 1;
    endY -= 1;
  }
  x = x.slice(start, endX);
  y = y.slice(start, endY);
  if (x.length < y.length) [x, y] = [y, x];
  if (y.length === 0) return x.length;
  let previous = new Uint32Array(y.length + 1);
  let current = new Uint32Array(y.length + 1);
  for (let j = 0; j <= y.length; j += 1) previous[j] = j;
  let cells = 0;
  for (let i = 1; i <= x.length; i += 1) {
    cells += y.length;
    if (cells >= CELLS_PER_SLICE) {
      cells = 0;
      yield;
    }
    current[0] = i;
    const xi = x[i - 1];
    for (let j = 1; j <= y.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (xi === y[j - 1] ? 0 : 1);
      const deletion = (previous[j] as number) + 1;
      const insertion = (current[j - 1] as number) + 1;
      current[j] = Math.min(substitution, deletion, insertion);
    }
    [previous, current] = [current, previous];
  }
  return previous[y.length] as number;
}

/** 1 - distance / length of the longer text (both empty: 1). */
export function levenshteinSimilarity(a: string, b: string): number {
  const longest = Math.max(Array.from(a).length, Array.from(b).length);
  if (longest === 0) return 1;
  return 1 - levenshtein(a, b) / longest;
}

/** `similarity`: normalised edit-distance similarity to the expected text, passing at `threshold`. */
export function similarityScorer(name: string, options: SimilarityScorerOptions = {}): Scorer {
  const threshold = options.threshold ?? 0.8;
  return {
    name,
    type: 'similarity',
    async score({ output, expected }) {
      const target = options.value ?? expectedText(expected);
      if (target === null) return noExpected(name);
      const [got, want] = [normaliseText(output, options), normaliseText(target, options)];
      const longest = Math.max(codePoints(got), codePoints(want));
      if (longest > MAX_SIMILARITY_CHARS) {
        return { score: 0, pass: false, reason: `a text of ${longest} characters is over the ${MAX_SIMILARITY_CHARS} the similarity scorer compares` };
      }
      const score = longest === 0 ? 1 : 1 - (await levenshtein(got, want, yieldToLoop)) / longest;
      const pass = score >= threshold;
      return { score, pass, reason: `edit-distance similarity ${round(score)} ${pass ? '>=' : '<'} ${threshold}` };
    },
  };
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}
