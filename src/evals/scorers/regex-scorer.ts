import { compileLinearRegex, MAX_TEXT_CHARS, type LinearRegex } from './linear-regex.ts';
import { binary, quote, type Scorer } from './scorer.ts';

export interface RegexScorerOptions {
  /** RE2 syntax (no backreferences or lookaround): matched in time linear in the output's length. */
  pattern: string;
  /** Any of `i`, `m`, `s`, `u`; `g` and `y` are refused because they make `test` stateful. */
  flags?: string;
}

/**
 * Compiles the pattern on the linear-time engine; throws `UnsupportedPatternError` naming a
 * JavaScript feature RE2 lacks, or a SyntaxError with the engine's sentence when it is invalid.
 */
export function compileScorerRegex(options: RegexScorerOptions): LinearRegex {
  return compileLinearRegex(options.pattern, options.flags ?? '');
}

/** `regex`: the output matches the configured pattern (outputs over MAX_TEXT_CHARS fail, saying so). */
export function regexScorer(name: string, options: RegexScorerOptions): Scorer {
  const regex = compileScorerRegex(options);
  const shown = `/${options.pattern}/${options.flags ?? ''}`;
  return {
    name,
    type: 'regex',
    async score({ output }) {
      if (output.length > MAX_TEXT_CHARS) return binary(false, `output of ${output.length} characters is over the ${MAX_TEXT_CHARS} a regex scorer looks at`);
      const found = regex.find(output);
      if (!found.matched) return binary(false, `output does not match ${shown}`);
      return binary(true, found.match === undefined ? `output matches ${shown}` : `output matches ${shown} at ${quote(found.match, 40)}`);
    },
  };
}
