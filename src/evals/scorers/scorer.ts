import { canonicalJson } from '../canonical-json.ts';

/**
 * The seam between the evaluation runner and scoring. Each scorer type lives in its own file of
 * this folder; `scorer-factory.ts` validates the configured list and builds them.
 */

export interface ScoreInput {
  output: string;
  /** The case's expected value, if the dataset row has one. */
  expected?: unknown;
  vars: Record<string, unknown>;
}

export interface ScoreResult {
  /** Between 0 and 1. */
  score: number;
  pass: boolean;
  /** One sentence a reviewer can read without the scorer's code. */
  reason: string;
}

export interface ScoreOptions {
  signal?: AbortSignal;
}

export interface Scorer {
  /** Unique within a run; the key of this scorer's column in results and summaries. */
  readonly name: string;
  readonly type: string;
  /** Scores one case. Throws only when scoring itself failed (e.g. the judge provider is down). */
  score(input: ScoreInput, options?: ScoreOptions): Promise<ScoreResult>;
}

export interface TextNormalisation {
  /** Strip leading and trailing whitespace. @defaultValue true (models often end with a newline) */
  trim?: boolean;
  case_insensitive?: boolean;
  /** Turn every run of whitespace into one space. */
  collapse_whitespace?: boolean;
}

/** Applies the normalisation options to a text. */
export function normaliseText(text: string, options: TextNormalisation): string {
  let out = text;
  if (options.collapse_whitespace) out = out.replace(/\s+/g, ' ');
  if (options.trim ?? true) out = out.trim();
  if (options.case_insensitive) out = out.toLowerCase();
  return out;
}

/** The expected value as text (strings as they are, other values as canonical JSON), or null when absent. */
export function expectedText(expected: unknown): string | null {
  if (expected === undefined || expected === null) return null;
  return typeof expected === 'string' ? expected : canonicalJson(expected);
}

/** Quotes a text for a reason sentence, shortened so reasons stay one line. */
export function quote(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, ' ');
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}...` : flat);
}

/** Builds a 0/1 result. */
export function binary(pass: boolean, reason: string): ScoreResult {
  return { score: pass ? 1 : 0, pass, reason };
}

/** The result when a scorer needs an expected value and the case has none. */
export function noExpected(name: string): ScoreResult {
  return { score: 0, pass: false, reason: `${name}: the case has no expected value to compare with` };
}

/**
 * Wraps a scorer so that `pass` is `score >= threshold`. Used when a threshold is configured, so a
 * user can demand e.g. 0.9 similarity without each scorer re-implementing the rule.
 */
export function withThreshold(scorer: Scorer, threshold: number): Scorer {
  return {
    name: scorer.name,
    type: scorer.type,
    async score(input, options) {
      const result = await scorer.score(input, options);
      const pass = result.score >= threshold;
      const comparison = `score ${round(result.score)} ${pass ? '>=' : '<'} threshold ${threshold}`;
      return { score: result.score, pass, reason: `${result.reason} (${comparison})` };
    },
  };
}

/** Rounds for display in reasons (never for stored scores). */
export function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
