import type { CaseRecord } from './case-pages.ts';
import type { FlippedCase } from './run-compare.ts';

/**
 * What a reader needs to judge a flipped case side by side: its inputs, the expected answer and
 * both runs' outputs and errors. Bounded: at most `MAX_FLIPPED_WITH_TEXTS` cases get them, and each
 * text is cut at `MAX_TEXT_CHARS` characters (`truncated` says so).
 */

export const MAX_FLIPPED_WITH_TEXTS = 1000;
export const MAX_TEXT_CHARS = 2000;

export interface CaseSide {
  output: string | null;
  error: string | null;
}

export interface FlippedCaseWithTexts extends FlippedCase {
  vars?: Record<string, unknown>;
  expected?: unknown;
  base?: CaseSide;
  head?: CaseSide;
  /** A text above was cut at MAX_TEXT_CHARS characters. */
  truncated?: boolean;
}

/** Where each wanted case id sits in a run's results (its line position). */
export function positionsOf(cases: ReadonlyArray<{ id: string }>, ids: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  cases.forEach((c, i) => {
    if (ids.has(c.id)) out.set(c.id, i);
  });
  return out;
}

/** The ids whose texts are attached: the first flipped cases, once each. */
export function idsWithTexts(flipped: readonly FlippedCase[]): Set<string> {
  const ids = new Set<string>();
  for (const f of flipped) {
    if (ids.size >= MAX_FLIPPED_WITH_TEXTS) break;
    ids.add(f.id);
  }
  return ids;
}

/** Attaches vars, expected and both sides' output and error to the flipped cases found in `base` and `head`. */
export function attachTexts(flipped: readonly FlippedCase[], base: ReadonlyMap<string, CaseRecord>, head: ReadonlyMap<string, CaseRecord>): FlippedCaseWithTexts[] {
  return flipped.map((f) => {
    const b = base.get(f.id);
    const h = head.get(f.id);
    if (!b || !h) return { ...f };
    let truncated = false;
    const cut = (text: string | null): string | null => {
      if (text === null || text.length <= MAX_TEXT_CHARS) return text;
      truncated = true;
      return text.slice(0, MAX_TEXT_CHARS);
    };
    return {
      ...f,
      vars: h.vars,
      expected: h.expected,
      base: { output: cut(b.output), error: cut(b.error) },
      head: { output: cut(h.output), error: cut(h.error) },
      truncated,
    };
  });
}
