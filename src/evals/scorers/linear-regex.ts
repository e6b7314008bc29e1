import { RE2JS, RE2JSSyntaxException } from 're2js';

/**
 * Every pattern a user gives (regex scorers, `pattern`/`patternProperties` in a json_schema scorer's
 * schema) runs on RE2 (re2js, pure JavaScript): matching time grows linearly with the text, where
 * V8's backtracking engine took 25 s for `^(a+)+$` against 29 characters. V8's own linear engine
 * needs `--enable-experimental-regexp-engine` for the whole process and still falls back to
 * backtracking for patterns it cannot handle, so it gives no guarantee a service can promise.
 *
 * Linear is not free. Deciding whether a text matches runs RE2's DFA (about 1 ns per character
 * once its states are built); finding where the match is (to quote it) runs the NFA with
 * captures, about 30 ns per character per program instruction in the worst case measured by
 * bench/scorer-worst-case.ts. So a pattern's program may have at most MAX_PROGRAM_SIZE
 * instructions, texts are matched up to MAX_TEXT_CHARS, and the match is located (for the reason
 * sentence) only while program size x text length stays within LOCATE_BUDGET.
 */

/** Instructions a compiled pattern may have (`^answer: \d+$` has 14, `\w{1,200}` about 400). */
export const MAX_PROGRAM_SIZE = 2_000;
/**
 * Longest text a pattern is run against: 256 KiB, far beyond a model's answer, takes about 2 ms at
 * worst (bench/scorer-worst-case.ts); 1 MiB took about 15 ms.
 */
export const MAX_TEXT_CHARS = 262_144;
/** Program size x text length up to which the match is located and quoted: about 10 ms at worst. */
export const LOCATE_BUDGET = 300_000;

/** A pattern valid in JavaScript that RE2 cannot run in linear time (backreferences, lookaround, ...). */
export class UnsupportedPatternError extends Error {
  constructor(
    readonly feature: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsupportedPatternError';
  }
}

/** A compiled linear-time pattern. */
export interface LinearRegex {
  readonly source: string;
  readonly flags: string;
  /** Instructions of the compiled program: the cost of a match per character of text. */
  readonly programSize: number;
  /**
   * Whether `text` (at most MAX_TEXT_CHARS) holds a match, and the match itself when locating it
   * stays within LOCATE_BUDGET.
   */
  find(text: string): { matched: boolean; match?: string };
  test(text: string): boolean;
  toString(): string;
}

const FLAG_BITS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

/** JavaScript syntax RE2 refuses, named so the user knows what to change. */
const FEATURES: Array<[RegExp, string]> = [
  [/\(\?<[=!]/, 'lookbehind ((?<= or (?<!)'],
  [/\(\?[=!]/, 'lookahead ((?= or (?!)'],
  [/\\[1-9]|\\k</, 'backreferences (\\1, \\k<name>)'],
  [/\\u[0-9A-Fa-f{]/, 'the \\u escape (write \\x{00e9} instead)'],
  [/\\c[A-Za-z]/, 'the \\c control escape (write \\x01 instead)'],
];

/**
 * Compiles `pattern` with `flags` (any of `i`, `m`, `s`, `u`; RE2 always matches whole code points,
 * so `u` changes nothing). Throws `UnsupportedPatternError` for JavaScript syntax RE2 lacks or a
 * program over MAX_PROGRAM_SIZE, and a SyntaxError for a pattern that is not a regex at all.
 */
export function compileLinearRegex(pattern: string, flags = ''): LinearRegex {
  let bits = 0;
  for (const flag of flags) {
    const bit = FLAG_BITS[flag];
    if (bit === undefined) throw new SyntaxError(`flags '${flags}' may only contain i, m, s and u`);
    bits |= bit;
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, bits);
  } catch (error) {
    if (!(error instanceof RE2JSSyntaxException)) throw error;
    throw classify(pattern, flags, error);
  }
  const programSize = re.programSize();
  if (programSize > MAX_PROGRAM_SIZE) {
    throw new UnsupportedPatternError(
      'a pattern this large',
      `the pattern compiles to ${programSize} instructions, over the limit of ${MAX_PROGRAM_SIZE} (large counted repetitions such as {500} cost one instruction each)`,
    );
  }
  const test = (text: string): boolean => {
    if (text.length > MAX_TEXT_CHARS) throw new RangeError(`the text is ${text.length} characters long, over the ${MAX_TEXT_CHARS} a pattern is run against`);
    return re.test(text);
  };
  return {
    source: pattern,
    flags,
    programSize,
    find(text) {
      if (!test(text)) return { matched: false };
      if (programSize * text.length > LOCATE_BUDGET) return { matched: true };
      const found = re.exec(text);
      return found === null ? { matched: true } : { matched: true, match: String(found[0] ?? '') };
    },
    test,
    toString: () => `/${pattern}/${flags}`,
  };
}

/** Tells a JavaScript feature RE2 lacks (422 material) from a pattern that is simply invalid. */
function classify(pattern: string, flags: string, error: RE2JSSyntaxException): Error {
  try {
    // Compiling (never running) a JavaScript regex is cheap and cannot backtrack.
    new RegExp(pattern, flags);
  } catch (jsError) {
    return new SyntaxError(jsError instanceof Error ? jsError.message.replace(/^Invalid regular expression: /, '') : String(jsError));
  }
  const named = FEATURES.find(([probe]) => probe.test(pattern));
  const feature = named?.[1] ?? `${error.error}${error.input ? ` (${error.input})` : ''}`;
  return new UnsupportedPatternError(feature, `uses ${feature}, which the linear-time engine (RE2 syntax) does not support`);
}
