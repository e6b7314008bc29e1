/** Display helpers of the evaluation, compare, prompt and dataset pages. */
import type { EvaluationRun, RunStatus, ScorerComparison } from './eval-types.ts';
import { formatNumber, formatPercent } from './format.ts';

/** The first 8 characters of a run id: enough to tell runs apart on one screen. */
export const shortId = (id: string) => id.slice(0, 8);

/** `sha256:1a2b3c4d5e6f…` */
export const shortSnapshot = (id: string) => (id.startsWith('sha256:') ? `${id.slice(0, 19)}…` : id);

export const isActive = (status: RunStatus) => status === 'queued' || status === 'running';

/** A value shown as text: strings as they are, anything else as JSON. */
export function asText(value: unknown): string {
  if (value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** What a run is called in lists and pickers. */
export function runLabel(run: Pick<EvaluationRun, 'run_id' | 'name' | 'prompt_version' | 'model'>): string {
  return `${run.name ?? run.prompt_version} · ${run.model} · ${shortId(run.run_id)}`;
}

/** The prompt page of a `name@N` version, opened at that version. */
export function promptHref(promptVersion: string): string {
  const at = promptVersion.lastIndexOf('@');
  const name = at > 0 ? promptVersion.slice(0, at) : promptVersion;
  const version = at > 0 ? promptVersion.slice(at + 1) : '';
  return `/prompts/${encodeURIComponent(name)}${version ? `?to=${version}` : ''}`;
}

export const datasetHref = (id: string) => `/datasets/${encodeURIComponent(id)}`;
export const runHref = (id: string) => `/evaluations/${id}`;

/** "+0.050" / "−0.120". */
export function signed(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const text = Math.abs(n).toFixed(digits);
  return n > 0 ? `+${text}` : n < 0 ? `−${text}` : text;
}

/** A p-value in words people read: "p = 0.012", "p < 0.001". */
export function pValue(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  return p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`;
}

export interface Verdict {
  tone: 'better' | 'worse' | 'same' | 'unknown';
  text: string;
}

/**
 * The comparison of one scorer in plain words: the mean's interval decides whether the scores
 * moved; McNemar's test whether the pass/fail flips lean one way.
 */
export function verdictOf(s: ScorerComparison): Verdict {
  if (s.meanDelta === null || s.ci === null) return { tone: 'unknown', text: 'No case was scored in both runs: nothing to compare.' };
  const level = Math.round(s.ci.confidence * 100);
  const flips = s.mcnemar.passToFail + s.mcnemar.failToPass;
  const flipWords =
    flips === 0
      ? 'No case changed between pass and fail.'
      : `${s.mcnemar.passToFail} case(s) went from pass to fail and ${s.mcnemar.failToPass} from fail to pass (McNemar ${pValue(s.mcnemar.exactP)}${s.mcnemar.exactP < 0.05 ? ', unlikely to be chance' : ', could be chance'}).`;
  if (s.ci.lower > 0) return { tone: 'better', text: `Head scores higher: ${signed(s.meanDelta)} on average (${level}% interval ${signed(s.ci.lower)} to ${signed(s.ci.upper)}, above zero). ${flipWords}` };
  if (s.ci.upper < 0) return { tone: 'worse', text: `Head scores lower: ${signed(s.meanDelta)} on average (${level}% interval ${signed(s.ci.lower)} to ${signed(s.ci.upper)}, below zero). ${flipWords}` };
  return { tone: 'same', text: `No clear difference: ${signed(s.meanDelta)} on average, and the ${level}% interval (${signed(s.ci.lower)} to ${signed(s.ci.upper)}) includes zero. ${flipWords}` };
}

/** "92.50% pass · mean 0.925" for a scorer of a run summary. */
export function scoreLine(s: { pass_rate: number | null; mean: number | null }): string {
  return `${formatPercent(s.pass_rate, 1)} pass · mean ${formatNumber(s.mean)}`;
}
