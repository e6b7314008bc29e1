import { binary, expectedText, noExpected, normaliseText, quote, type Scorer, type TextNormalisation } from './scorer.ts';

export interface ExactScorerOptions extends TextNormalisation {
  /** Compare with this text instead of the case's expected value. */
  value?: string;
}

/** `exact`: the (normalised) output equals the (normalised) expected value. */
export function exactScorer(name: string, options: ExactScorerOptions = {}): Scorer {
  return {
    name,
    type: 'exact',
    async score({ output, expected }) {
      const target = options.value ?? expectedText(expected);
      if (target === null) return noExpected(name);
      const got = normaliseText(output, options);
      const want = normaliseText(target, options);
      return got === want
        ? binary(true, `output equals ${quote(want)}`)
        : binary(false, `output ${quote(got)} differs from expected ${quote(want)}`);
    },
  };
}
