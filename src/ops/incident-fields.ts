import { z } from 'zod';
import { AppError } from '../errors.ts';
import { formatKst } from './kst-time.ts';

/**
 * What incident messages and postmortems share: severities, output formats, the measured impact
 * figures and how a title with labelled fields is rendered as Markdown or Slack mrkdwn.
 */

export const SEVERITIES = ['P1', 'P2'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const OUTPUT_FORMATS = ['markdown', 'slack', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Text shown for a figure nobody measured: never a made-up zero. */
export const NOT_MEASURED = 'not measured';

const ratio = z.number().min(0, { message: 'must be a ratio from 0 to 1' }).max(1, { message: 'must be a ratio from 0 to 1' }).nullable().optional();

/** Measured impact. Ratios are fractions (0.0235 is 2.35%); null or absent means not measured. */
export const impactFiguresSchema = z.strictObject({
  apiErrorRatio: ratio,
  p99LatencyMs: z.number().min(0, { message: 'must be milliseconds ≥ 0' }).nullable().optional(),
  jobFailureRatio: ratio,
  evaluationFailureRatio: ratio,
});
export type ImpactFigures = z.infer<typeof impactFiguresSchema>;

/** The four figures, each a number or null (JSON shows `null` rather than leaving the key out). */
export interface MeasuredImpact {
  readonly apiErrorRatio: number | null;
  readonly p99LatencyMs: number | null;
  readonly jobFailureRatio: number | null;
  readonly evaluationFailureRatio: number | null;
}

/** Fills every figure, null where not measured. */
export function measuredImpact(impact: ImpactFigures): MeasuredImpact {
  return {
    apiErrorRatio: impact.apiErrorRatio ?? null,
    p99LatencyMs: impact.p99LatencyMs ?? null,
    jobFailureRatio: impact.jobFailureRatio ?? null,
    evaluationFailureRatio: impact.evaluationFailureRatio ?? null,
  };
}

/** `2.35%`, or `not measured`. */
export function formatRatio(value: number | null | undefined): string {
  return value === null || value === undefined ? NOT_MEASURED : `${(value * 100).toFixed(2)}%`;
}

/** `1250 ms`, or `not measured`. */
export function formatLatency(value: number | null | undefined): string {
  return value === null || value === undefined ? NOT_MEASURED : `${Math.round(value)} ms`;
}

/** The four impact figures as labelled text, in the runbook's order. */
export function impactLines(impact: ImpactFigures): string[] {
  return [
    `API error ratio: ${formatRatio(impact.apiErrorRatio)}`,
    `p99 latency: ${formatLatency(impact.p99LatencyMs)}`,
    `job failure ratio: ${formatRatio(impact.jobFailureRatio)}`,
    `evaluation failure ratio: ${formatRatio(impact.evaluationFailureRatio)}`,
  ];
}

/** Escapes the three characters Slack's mrkdwn reserves for links and mentions. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A field as label and value, or as label and a list of values. */
export type Field = readonly [label: string, value: string | readonly string[]];

/** Continuation lines indented so that multi-line text stays inside its list item. */
const indent = (text: string, spaces: number) => text.replace(/\r?\n/g, `\n${' '.repeat(spaces)}`);

/** Renders a title and labelled fields as a Markdown list or as Slack mrkdwn bullets. */
export function renderFields(title: string, fields: readonly Field[], format: 'markdown' | 'slack'): string {
  const out: string[] = [];
  if (format === 'markdown') {
    out.push(`## ${title}`, '');
    for (const [label, value] of fields) {
      if (typeof value === 'string') out.push(`- **${label}:** ${indent(value, 2)}`);
      else {
        out.push(`- **${label}:**`);
        for (const v of value) out.push(`  - ${indent(v, 4)}`);
      }
    }
  } else {
    out.push(`*${escapeSlack(title)}*`);
    for (const [label, value] of fields) {
      if (typeof value === 'string') out.push(`• *${escapeSlack(label)}:* ${escapeSlack(value)}`);
      else {
        out.push(`• *${escapeSlack(label)}:*`);
        for (const v of value) out.push(`    ◦ ${escapeSlack(v)}`);
      }
    }
  }
  return `${out.join('\n')}\n`;
}

/** A time in both forms: ISO for machines, KST for people. */
export interface Stamp {
  readonly iso: string;
  readonly kst: string;
}

/** The date as ISO and as `YYYY-MM-DD HH:MM KST`. */
export function stamp(date: Date): Stamp {
  return { iso: date.toISOString(), kst: formatKst(date) };
}

/** Parses input with a schema, turning zod's issues into one VALIDATION error that names each field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`);
  throw new AppError('VALIDATION', `${what}: ${problems.join('; ')}`, { problems });
}
