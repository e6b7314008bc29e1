import { binary, quote, type Scorer } from './scorer.ts';

export interface RegexScorerOptions {
  pattern: string;
  /** Any of `i`, `m`, `s`, `u`; `g` and `y` are refused because they make `test` stateful. */
  flags?: string;
}

/** Compiles the pattern; throws a SyntaxError with the engine's sentence when it is invalid. */
export function compileScorerRegex(options: RegexScorerOptions): RegExp {
  if (options.flags !== undefined && !/^[imsu]*$/.test(options.flags)) {
    throw new SyntaxError(`flags '${options.flags}' may only contain i, m, s and u`);
  }
  return new RegExp(options.pattern, options.flags);
}

/** `regex`: the output matches the configured pattern. */
export function regexScorer(name: string, options: RegexScorerOptions): Scorer {
  const regex = compileScorerRegex(options);
  return {
    name,
    type: 'regex',
    async score({ output }) {
      const match = regex.exec(output);
      return match !== null
        ? binary(true, `output matches /${options.pattern}/${options.flags ?? ''} at ${quote(match[0], 40)}`)
        : binary(false, `output does not match /${options.pattern}/${options.flags ?? ''}`);
    },
  };
}
