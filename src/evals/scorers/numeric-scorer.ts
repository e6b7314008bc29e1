import { binary, noExpected, quote, round, type Scorer } from './scorer.ts';

export interface NumericScorerOptions {
  /** Compare with this number instead of the case's expected value. */
  value?: number;
  /** Allowed absolute difference. @defaultValue 0 */
  absolute?: number;
  /** Allowed difference relative to the expected value (0.01 = 1%). @defaultValue 0 */
  relative?: number;
  /** Which number of the output to use when it holds several. @defaultValue 'first' */
  pick?: 'first' | 'last';
}

/** Integers, decimals, thousands separators (`1,234.5`), exponents; a leading sign. */
const NUMBER = /[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+\u2212]?\.\d+(?:[eE][-+]?\d+)?/g;

/** Extracts a number from free text (`"The answer is 1,234.5."` -> 1234.5), or null. */
export function parseNumberFromText(text: string, pick: 'first' | 'last' = 'first'): number | null {
  const matches = text.match(NUMBER);
  if (matches === null || matches.length === 0) return null;
  const raw = (pick === 'first' ? matches[0] : matches[matches.length - 1]) as string;
  const value = Number(raw.replace(/,/g, '').replace('\u2212', '-'));
  return Number.isFinite(value) ? value : null;
}

/** `numeric`: a number parsed from the output is within tolerance of the expected number. */
export function numericScorer(name: string, options: NumericScorerOptions = {}): Scorer {
  const absolute = options.absolute ?? 0;
  const relative = options.relative ?? 0;
  return {
    name,
    type: 'numeric',
    async score({ output, expected }) {
      let target: number | null;
      if (options.value !== undefined) target = options.value;
      else if (typeof expected === 'number') target = expected;
      else if (typeof expected === 'string') target = parseNumberFromText(expected);
      else if (expected === undefined || expected === null) return noExpected(name);
      else target = null;
      if (target === null) return binary(false, `the expected value ${quote(String(expected))} is not a number`);
      const got = parseNumberFromText(output, options.pick ?? 'first');
      if (got === null) return binary(false, `no number found in output ${quote(output)}`);
      const allowed = Math.max(absolute, relative * Math.abs(target));
      const difference = Math.abs(got - target);
      return difference <= allowed
        ? binary(true, `${got} is within ${round(allowed)} of ${target}`)
        : binary(false, `${got} differs from ${target} by ${round(difference)}, more than the ${round(allowed)} allowed`);
    },
  };
}
