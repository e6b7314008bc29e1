import { expectedText, noExpected, normaliseText, round, type Scorer, type TextNormalisation } from './scorer.ts';

export interface SimilarityScorerOptions extends TextNormalisation {
  /** Compare with this text instead of the case's expected value. */
  value?: string;
  /** Pass when the similarity is at least this. @defaultValue 0.8 */
  threshold?: number;
}

/**
 * Levenshtein distance over Unicode code points (so an emoji counts as one edit), in O(n*m) time
 * and O(min(n, m)) memory after stripping the common prefix and suffix.
 */
export function levenshtein(a: string, b: string): number {
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
  for (let i = 1; i <= x.length; i += 1) {
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
      const score = levenshteinSimilarity(normaliseText(output, options), normaliseText(target, options));
      const pass = score >= threshold;
      return { score, pass, reason: `edit-distance similarity ${round(score)} ${pass ? '>=' : '<'} ${threshold}` };
    },
  };
}
