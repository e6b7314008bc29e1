import { binary, expectedText, noExpected, quote, type Scorer } from './scorer.ts';

export interface ContainsScorerOptions {
  /** Look for this text instead of the case's expected value. */
  value?: string;
  case_insensitive?: boolean;
}

/** `contains`: the output contains the expected text (or `value`). */
export function containsScorer(name: string, options: ContainsScorerOptions = {}): Scorer {
  return {
    name,
    type: 'contains',
    async score({ output, expected }) {
      const target = options.value ?? expectedText(expected);
      if (target === null) return noExpected(name);
      const haystack = options.case_insensitive ? output.toLowerCase() : output;
      const needle = options.case_insensitive ? target.toLowerCase() : target;
      return haystack.includes(needle)
        ? binary(true, `output contains ${quote(target)}`)
        : binary(false, `output does not contain ${quote(target)}`);
    },
  };
}
