import { z } from 'zod';
import { AppError } from '../errors.ts';
import {
  SEVERITIES,
  impactFiguresSchema,
  impactLines,
  measuredImpact,
  parseInput,
  renderFields,
  stamp,
  type Field,
  type MeasuredImpact,
  type OutputFormat,
  type Severity,
  type Stamp,
} from './incident-fields.ts';
import { addMinutes, type Clock } from './kst-time.ts';
import { postmortemDueAt } from './postmortem-template.ts';

export { OUTPUT_FORMATS, SEVERITIES, type ImpactFigures, type OutputFormat, type Severity } from './incident-fields.ts';

/**
 * The runbook's communication templates as code: the start, update and end messages of an incident,
 * filled in from measured figures and rendered for Markdown, Slack or JSON.
 *
 * Slack output is mrkdwn text, not Block Kit JSON: an on-call engineer pastes it into a channel as
 * it is, and the same text works as the `text` of an incoming-webhook payload. Block Kit would need
 * a webhook or an app to be useful at all.
 */

/** Statuspage's incident phases, so an update can be posted there with the same word. */
export const INCIDENT_PHASES = ['investigating', 'identified', 'monitoring'] as const;
export type IncidentPhase = (typeof INCIDENT_PHASES)[number];

/** The runbook promises the next update 30 minutes after each message. */
export const NEXT_UPDATE_MINUTES = 30;

const line = (what: string) => z.string().trim().min(1, { message: `must say ${what}` });
const oneLine = (what: string) => line(what).refine((s) => !/[\r\n]/.test(s), { message: 'must be one line' });

export const incidentStartInputSchema = z.strictObject({
  id: z.string().trim().min(1).optional(),
  severity: z.enum(SEVERITIES, { message: 'accepts P1 or P2' }),
  summary: oneLine('what is wrong'),
  impact: impactFiguresSchema.default({}),
  affected: z.array(line('an endpoint or function')).default([]),
  mitigation: z.array(line('what was done')).default([]),
});
export type IncidentStartInput = z.input<typeof incidentStartInputSchema>;

export const incidentUpdateInputSchema = incidentStartInputSchema.extend({
  phase: z.enum(INCIDENT_PHASES, { message: `accepts ${INCIDENT_PHASES.join(', ')}` }).default('investigating'),
  progress: line('what changed since the last message'),
});
export type IncidentUpdateInput = z.input<typeof incidentUpdateInputSchema>;

export const preventionItemSchema = z.strictObject({
  item: line('what will be done'),
  owner: line('who owns it'),
  due: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date as YYYY-MM-DD' })
    .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), {
      message: 'must be a real calendar date',
    }),
});
export type PreventionItem = z.infer<typeof preventionItemSchema>;

export const incidentEndInputSchema = z.strictObject({
  id: z.string().trim().min(1).optional(),
  severity: z.enum(SEVERITIES, { message: 'accepts P1 or P2' }),
  summary: oneLine('what the incident was'),
  startedAt: z.date().optional(),
  rootCause: oneLine('the root cause'),
  resolution: line('how service was recovered or mitigated'),
  prevention: z.array(preventionItemSchema).default([]),
});
export type IncidentEndInput = z.input<typeof incidentEndInputSchema>;

interface MessageBase {
  readonly id: string | null;
  readonly severity: Severity;
  readonly summary: string;
  readonly at: Stamp;
}

export interface IncidentStartMessage extends MessageBase {
  readonly kind: 'incident_start';
  readonly impact: MeasuredImpact;
  readonly affected: readonly string[];
  readonly mitigation: readonly string[];
  readonly nextUpdate: Stamp;
}

export interface IncidentUpdateMessage extends MessageBase {
  readonly kind: 'incident_update';
  readonly phase: IncidentPhase;
  readonly progress: string;
  readonly impact: MeasuredImpact;
  readonly affected: readonly string[];
  readonly mitigation: readonly string[];
  readonly nextUpdate: Stamp;
}

export interface IncidentEndMessage extends MessageBase {
  readonly kind: 'incident_end';
  readonly startedAt: Stamp | null;
  readonly durationMinutes: number | null;
  readonly rootCause: string;
  readonly resolution: string;
  readonly prevention: readonly PreventionItem[];
  readonly postmortemDue: Stamp;
}

export type IncidentMessage = IncidentStartMessage | IncidentUpdateMessage | IncidentEndMessage;

/** The runbook's start message, stamped with the clock's time and the next update 30 minutes later. */
export function incidentStartMessage(input: IncidentStartInput, clock: Clock): IncidentStartMessage {
  const v = parseInput(incidentStartInputSchema, input, 'incident start');
  const now = clock();
  return {
    kind: 'incident_start',
    id: v.id ?? null,
    severity: v.severity,
    summary: v.summary,
    at: stamp(now),
    impact: measuredImpact(v.impact),
    affected: v.affected,
    mitigation: v.mitigation,
    nextUpdate: stamp(addMinutes(now, NEXT_UPDATE_MINUTES)),
  };
}

/** An update during the incident: phase, progress, current impact, next update in 30 minutes. */
export function incidentUpdateMessage(input: IncidentUpdateInput, clock: Clock): IncidentUpdateMessage {
  const v = parseInput(incidentUpdateInputSchema, input, 'incident update');
  const now = clock();
  return {
    kind: 'incident_update',
    id: v.id ?? null,
    severity: v.severity,
    summary: v.summary,
    at: stamp(now),
    phase: v.phase,
    progress: v.progress,
    impact: measuredImpact(v.impact),
    affected: v.affected,
    mitigation: v.mitigation,
    nextUpdate: stamp(addMinutes(now, NEXT_UPDATE_MINUTES)),
  };
}

/** The runbook's end message: end time (the clock's), root cause, recovery, prevention items, postmortem due. */
export function incidentEndMessage(input: IncidentEndInput, clock: Clock, options: { holidays?: ReadonlySet<string> } = {}): IncidentEndMessage {
  const v = parseInput(incidentEndInputSchema, input, 'incident end');
  const endedAt = clock();
  if (v.startedAt && v.startedAt.getTime() > endedAt.getTime()) {
    throw new AppError('VALIDATION', 'incident end: startedAt: must not be after the end time');
  }
  return {
    kind: 'incident_end',
    id: v.id ?? null,
    severity: v.severity,
    summary: v.summary,
    at: stamp(endedAt),
    startedAt: v.startedAt ? stamp(v.startedAt) : null,
    durationMinutes: v.startedAt ? Math.round((endedAt.getTime() - v.startedAt.getTime()) / 60_000) : null,
    rootCause: v.rootCause,
    resolution: v.resolution,
    prevention: v.prevention,
    postmortemDue: stamp(postmortemDueAt(v.severity, endedAt, options.holidays)),
  };
}

const orNone = (list: readonly string[], none: string): string | readonly string[] => (list.length === 0 ? none : list);

function messageFields(m: IncidentMessage): { title: string; fields: Field[] } {
  const ref = m.id ? ` ${m.id}` : '';
  switch (m.kind) {
    case 'incident_start':
      return {
        title: `[${m.severity}] Incident${ref} started: ${m.summary}`,
        fields: [
          ['Time', m.at.kst],
          ['Severity', m.severity],
          ['Summary', m.summary],
          ['Impact', impactLines(m.impact)],
          ['Affected endpoints/functions', orNone(m.affected, 'being assessed')],
          ['Mitigation so far', orNone(m.mitigation, 'none yet')],
          ['Next update', `${m.nextUpdate.kst} (+${NEXT_UPDATE_MINUTES} min)`],
        ],
      };
    case 'incident_update':
      return {
        title: `[${m.severity}] Incident${ref} update (${m.phase}): ${m.summary}`,
        fields: [
          ['Time', m.at.kst],
          ['Status', m.phase],
          ['Progress', m.progress],
          ['Impact', impactLines(m.impact)],
          ['Affected endpoints/functions', orNone(m.affected, 'unchanged')],
          ['Mitigation so far', orNone(m.mitigation, 'none yet')],
          ['Next update', `${m.nextUpdate.kst} (+${NEXT_UPDATE_MINUTES} min)`],
        ],
      };
    case 'incident_end':
      return {
        title: `[${m.severity}] Incident${ref} resolved: ${m.summary}`,
        fields: [
          ['End time', m.at.kst],
          ...(m.startedAt ? ([['Started', `${m.startedAt.kst} (${m.durationMinutes} min)`]] as Field[]) : []),
          ['Root cause', m.rootCause],
          ['Recovery/mitigation', m.resolution],
          ['Prevention items', orNone(m.prevention.map((p) => `${p.item} (owner: ${p.owner}, due: ${p.due})`), 'none recorded')],
          [`Postmortem due (${m.severity})`, m.postmortemDue.kst],
        ],
      };
  }
}

/** The message as Markdown, Slack mrkdwn text, or JSON (the message object itself). */
export function renderIncidentMessage(message: IncidentMessage, format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify(message, null, 2)}\n`;
  const { title, fields } = messageFields(message);
  return renderFields(title, fields, format);
}
