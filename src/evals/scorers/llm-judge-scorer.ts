import { renderTemplate, type ChatMessage } from '../prompt-template.ts';
import type { Provider } from '../providers/provider.ts';
import { MAX_JSON_OUTPUT_CHARS } from './json-output.ts';
import { expectedText, round, type Scorer } from './scorer.ts';

export interface LlmJudgeScorerOptions {
  /** The judge; any Provider (usually wrapped by the response cache so replays do not call it). */
  provider: Provider;
  model: string;
  /**
   * The grading instructions, a template over `{{output}}`, `{{expected}}` and `{{vars.NAME}}`.
   * @defaultValue DEFAULT_JUDGE_RUBRIC
   */
  rubric?: string;
  /** Replaces the system message that asks for a JSON verdict. */
  system?: string;
  /** Sent to the judge as they are. @defaultValue { temperature: 0 } */
  params?: Record<string, unknown>;
  /** Judges are asked with a fixed seed so their verdicts repeat. @defaultValue 0 */
  seed?: number;
  /** Pass when the judge's score is at least this. @defaultValue 0.5 */
  threshold?: number;
}

export const DEFAULT_JUDGE_SYSTEM =
  'You grade the output of an AI system. Follow the rubric exactly. Answer with only a JSON object ' +
  '{"score": <a number from 0 to 1>, "reason": "<one sentence>"} and nothing else.';

export const DEFAULT_JUDGE_RUBRIC = [
  'Rubric: the output must answer correctly and agree with the expected answer when one is given.',
  '',
  'Expected answer:',
  '{{expected}}',
  '',
  'Output to grade:',
  '{{output}}',
].join('\n');

export interface JudgeVerdict {
  score: number;
  reason: string | null;
}

/**
 * Reads a verdict from a judge's reply, trying in turn: a JSON object with `score` (0..1, or
 * `score`/`max`) or `verdict`/`pass`; a `score: X` or `score: X/Y` line; a lone PASS or FAIL.
 * Returns null when the reply holds none of these.
 */
export function parseJudgeReply(reply: string): JudgeVerdict | null {
  const fromJson = verdictFromJson(reply);
  if (fromJson !== null) return fromJson;
  const line = /score\s*[:=]\s*(\d+(?:\.\d+)?)(?:\s*(?:\/|out of)\s*(\d+(?:\.\d+)?))?/i.exec(reply);
  if (line !== null) {
    const value = Number(line[1]);
    const max = line[2] === undefined ? 1 : Number(line[2]);
    if (max > 0 && value >= 0 && value <= max) return { score: value / max, reason: null };
  }
  const pass = /\bPASS\b/.test(reply);
  const fail = /\bFAIL\b/.test(reply);
  if (pass !== fail) return { score: pass ? 1 : 0, reason: null };
  return null;
}

function verdictFromJson(reply: string): JudgeVerdict | null {
  const start = reply.indexOf('{');
  const end = reply.lastIndexOf('}');
  if (start === -1 || end <= start) return null;
  let value: unknown;
  try {
    value = JSON.parse(reply.slice(start, end + 1));
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const reason = typeof record.reason === 'string' ? record.reason : null;
  if (typeof record.score === 'number') {
    const max = typeof record.max === 'number' && record.max > 0 ? record.max : 1;
    if (record.score >= 0 && record.score <= max) return { score: record.score / max, reason };
    return null;
  }
  const verdict = record.verdict ?? record.pass;
  if (typeof verdict === 'boolean') return { score: verdict ? 1 : 0, reason };
  if (typeof verdict === 'string' && /^(pass|fail)$/i.test(verdict)) {
    return { score: verdict.toLowerCase() === 'pass' ? 1 : 0, reason };
  }
  return null;
}

/** `llm_judge`: asks a judge model to grade the output against a rubric. */
export function llmJudgeScorer(name: string, options: LlmJudgeScorerOptions): Scorer {
  const threshold = options.threshold ?? 0.5;
  const rubric = options.rubric ?? DEFAULT_JUDGE_RUBRIC;
  return {
    name,
    type: 'llm_judge',
    async score({ output, expected, vars }, scoreOptions = {}) {
      // A missing {{expected}} is rendered as "(none)" rather than failing: rubrics often work without it.
      const context = { output, expected: expectedText(expected) ?? '(none)', vars };
      const messages: ChatMessage[] = [
        { role: 'system', content: options.system ?? DEFAULT_JUDGE_SYSTEM },
        { role: 'user', content: renderTemplate(rubric, context) },
      ];
      const reply = await options.provider.complete(
        { messages, model: options.model, params: options.params ?? { temperature: 0 }, seed: options.seed ?? 0 },
        { signal: scoreOptions.signal },
      );
      // A verdict is a line; parsing a huge reply (JSON.parse) would hold the event loop for nothing.
      if (reply.output.length > MAX_JSON_OUTPUT_CHARS) {
        return { score: 0, pass: false, reason: `the judge's reply of ${reply.output.length} characters is over the ${MAX_JSON_OUTPUT_CHARS} read for a verdict` };
      }
      const verdict = parseJudgeReply(reply.output);
      if (verdict === null) {
        // A failing score rather than a throw: the case stays scored, and the reply is visible in the reason.
        const shown = reply.output.replace(/\s+/g, ' ').slice(0, 120);
        return { score: 0, pass: false, reason: `the judge's reply held no score or verdict: ${JSON.stringify(shown)}` };
      }
      const pass = verdict.score >= threshold;
      const why = verdict.reason === null ? '' : `: ${verdict.reason}`;
      return {
        score: verdict.score,
        pass,
        reason: `judge score ${round(verdict.score)} ${pass ? '>=' : '<'} ${threshold}${why}`,
      };
    },
  };
}
