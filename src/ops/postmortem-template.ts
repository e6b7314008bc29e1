import { z } from 'zod';
import {
  SEVERITIES,
  escapeSlack,
  impactFiguresSchema,
  impactLines,
  measuredImpact,
  parseInput,
  stamp,
  type ImpactFigures,
  type MeasuredImpact,
  type OutputFormat,
  type Severity,
  type Stamp,
} from './incident-fields.ts';
import type { IncidentEndMessage } from './incident-templates.ts';
import { addBusinessDaysKst, addMinutes, kstDate } from './kst-time.ts';

/**
 * The postmortem skeleton `incident end` writes: the fields of the Google SRE book's example
 * postmortem (summary, impact, root causes, trigger, resolution, detection, action items, lessons
 * learned, timeline) with PagerDuty's responders and exact impact figures, and the due date the runbook
 * sets: 24 hours after the end for P1, 3 business days (Korean week) for P2.
 */

/** P1: the postmortem is written within 24 hours. */
export const P1_POSTMORTEM_HOURS = 24;
/** P2: the analysis and improvement items are registered within 3 business days. */
export const P2_ANALYSIS_BUSINESS_DAYS = 3;

/** Action item types of the SRE book's template, plus `other`. */
export const ACTION_ITEM_TYPES = ['prevent', 'mitigate', 'process', 'other'] as const;
export type ActionItemType = (typeof ACTION_ITEM_TYPES)[number];

/** When the postmortem (P1) or the analysis (P2) of an incident that ended at `endedAt` is due. */
export function postmortemDueAt(severity: Severity, endedAt: Date, holidays: ReadonlySet<string> = new Set()): Date {
  return severity === 'P1' ? addMinutes(endedAt, P1_POSTMORTEM_HOURS * 60) : addBusinessDaysKst(endedAt, P2_ANALYSIS_BUSINESS_DAYS, holidays);
}

/** The rule behind a due date, in words. */
export function dueRule(severity: Severity): string {
  return severity === 'P1'
    ? `${P1_POSTMORTEM_HOURS} hours after the end (P1)`
    : `${P2_ANALYSIS_BUSINESS_DAYS} business days after the end, weekends in KST skipped (P2)`;
}

const text = z.string().trim().min(1);

export const postmortemInputSchema = z.strictObject({
  id: text.optional(),
  title: text.refine((s) => !/[\r\n]/.test(s), { message: 'must be one line' }),
  severity: z.enum(SEVERITIES, { message: 'accepts P1 or P2' }),
  startedAt: z.date().optional(),
  endedAt: z.date(),
  authors: z.array(text).default([]),
  /** PagerDuty's template names who responded (incident commander, scribe, others). */
  responders: z.array(text).default([]),
  summary: text,
  impact: impactFiguresSchema.default({}),
  rootCauses: z.array(text).default([]),
  trigger: text.optional(),
  resolution: text.optional(),
  detection: text.optional(),
  actionItems: z
    .array(
      z.strictObject({
        item: text,
        type: z.enum(ACTION_ITEM_TYPES, { message: `accepts ${ACTION_ITEM_TYPES.join(', ')}` }).default('prevent'),
        owner: text,
        due: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date as YYYY-MM-DD' }),
        ticket: text.nullable().default(null),
      }),
    )
    .default([]),
  timeline: z.array(z.strictObject({ at: z.date(), event: text })).default([]),
  /** Seoul dates (`YYYY-MM-DD`) that are not business days, such as public holidays. */
  holidays: z.array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date as YYYY-MM-DD' })).default([]),
});
export type PostmortemInput = z.input<typeof postmortemInputSchema>;

export interface ActionItem {
  readonly item: string;
  readonly type: ActionItemType;
  readonly owner: string;
  readonly due: string;
  readonly ticket: string | null;
}

/** A postmortem skeleton. Null and empty fields are the ones a person still has to write. */
export interface Postmortem {
  readonly kind: 'postmortem';
  readonly id: string | null;
  readonly title: string;
  /** Seoul date of the incident's start (or end, when the start is unknown). */
  readonly date: string;
  readonly authors: readonly string[];
  readonly status: 'draft';
  readonly severity: Severity;
  readonly summary: string;
  readonly impact: {
    readonly figures: MeasuredImpact;
    readonly startedAt: Stamp | null;
    readonly endedAt: Stamp;
    readonly durationMinutes: number | null;
  };
  readonly rootCauses: readonly string[];
  readonly trigger: string | null;
  readonly resolution: string | null;
  readonly detection: string | null;
  readonly responders: readonly string[];
  readonly actionItems: readonly ActionItem[];
  readonly lessonsLearned: {
    readonly wentWell: readonly string[];
    readonly wentWrong: readonly string[];
    readonly gotLucky: readonly string[];
  };
  readonly timeline: readonly { readonly at: Stamp; readonly event: string }[];
  readonly due: Stamp;
  readonly dueRule: string;
}

/** The postmortem skeleton with its due date; timeline entries are sorted by time. */
export function buildPostmortem(input: PostmortemInput): Postmortem {
  const v = parseInput(postmortemInputSchema, input, 'postmortem');
  const startedAt = v.startedAt ?? null;
  const timeline = [...v.timeline].sort((a, b) => a.at.getTime() - b.at.getTime());
  return {
    kind: 'postmortem',
    id: v.id ?? null,
    title: v.title,
    date: kstDate(startedAt ?? v.endedAt),
    authors: v.authors,
    status: 'draft',
    severity: v.severity,
    summary: v.summary,
    impact: {
      figures: measuredImpact(v.impact),
      startedAt: startedAt ? stamp(startedAt) : null,
      endedAt: stamp(v.endedAt),
      durationMinutes: startedAt ? Math.round((v.endedAt.getTime() - startedAt.getTime()) / 60_000) : null,
    },
    rootCauses: v.rootCauses,
    trigger: v.trigger ?? null,
    resolution: v.resolution ?? null,
    detection: v.detection ?? null,
    responders: v.responders,
    actionItems: v.actionItems,
    lessonsLearned: { wentWell: [], wentWrong: [], gotLucky: [] },
    timeline: timeline.map((t) => ({ at: stamp(t.at), event: t.event })),
    due: stamp(postmortemDueAt(v.severity, v.endedAt, new Set(v.holidays))),
    dueRule: dueRule(v.severity),
  };
}

/** What `incident end` knows beyond its message: the stored timeline, measured impact, authors. */
export interface PostmortemExtras {
  readonly authors?: readonly string[];
  readonly responders?: readonly string[];
  readonly impact?: ImpactFigures;
  readonly timeline?: readonly { readonly at: Date; readonly event: string }[];
  readonly trigger?: string;
  readonly detection?: string;
  readonly holidays?: readonly string[];
}

/** The skeleton `incident end` writes, prefilled from the end message: root cause, resolution, prevention items. */
export function postmortemFromIncidentEnd(end: IncidentEndMessage, extras: PostmortemExtras = {}): Postmortem {
  return buildPostmortem({
    ...(end.id ? { id: end.id } : {}),
    title: end.summary,
    severity: end.severity,
    ...(end.startedAt ? { startedAt: new Date(end.startedAt.iso) } : {}),
    endedAt: new Date(end.at.iso),
    authors: [...(extras.authors ?? [])],
    responders: [...(extras.responders ?? [])],
    summary: end.summary,
    impact: extras.impact ?? {},
    rootCauses: [end.rootCause],
    ...(extras.trigger ? { trigger: extras.trigger } : {}),
    resolution: end.resolution,
    ...(extras.detection ? { detection: extras.detection } : {}),
    actionItems: end.prevention.map((p) => ({ item: p.item, type: 'prevent' as const, owner: p.owner, due: p.due })),
    timeline: (extras.timeline ?? []).map((t) => ({ at: t.at, event: t.event })),
    holidays: [...(extras.holidays ?? [])],
  });
}

const TODO = 'to be written';

function durationText(pm: Postmortem): string {
  const { startedAt, endedAt, durationMinutes } = pm.impact;
  return startedAt ? `${startedAt.kst} to ${endedAt.kst} (${durationMinutes} min)` : `ended ${endedAt.kst}, start not recorded`;
}

/** Markdown table cells: a pipe would end the cell, a newline the row. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function renderMarkdown(pm: Postmortem): string {
  const todo = `_${TODO}_`;
  const list = (items: readonly string[]) => (items.length === 0 ? [`- ${todo}`] : items.map((i) => `- ${i}`));
  const out = [
    `# Postmortem: ${pm.title}`,
    '',
    '| Field | Value |',
    '|---|---|',
    `| Date | ${pm.date} (KST) |`,
    `| Authors | ${pm.authors.length ? cell(pm.authors.join(', ')) : todo} |`,
    `| Status | Draft |`,
    `| Severity | ${pm.severity} |`,
    `| Due | ${pm.due.kst}, ${pm.dueRule} |`,
    ...(pm.id ? [`| Incident | ${cell(pm.id)} |`] : []),
    '',
    '## Summary',
    '',
    pm.summary,
    '',
    '## Impact',
    '',
    `- Duration: ${durationText(pm)}`,
    ...impactLines(pm.impact.figures).map((l) => `- ${l}`),
    '',
    '## Root causes',
    '',
    ...list(pm.rootCauses),
    '',
    '## Trigger',
    '',
    pm.trigger ?? todo,
    '',
    '## Resolution',
    '',
    pm.resolution ?? todo,
    '',
    '## Detection',
    '',
    pm.detection ?? todo,
    '',
    '## Responders',
    '',
    ...list(pm.responders),
    '',
    '## Action items',
    '',
    '| Item | Type | Owner | Due | Ticket |',
    '|---|---|---|---|---|',
    ...(pm.actionItems.length === 0
      ? [`| ${todo} | | | | |`]
      : pm.actionItems.map((a) => `| ${cell(a.item)} | ${a.type} | ${cell(a.owner)} | ${a.due} | ${a.ticket ? cell(a.ticket) : 'none yet'} |`)),
    '',
    '## Lessons learned',
    '',
    '### What went well',
    '',
    ...list(pm.lessonsLearned.wentWell),
    '',
    '### What went wrong',
    '',
    ...list(pm.lessonsLearned.wentWrong),
    '',
    '### Where we got lucky',
    '',
    ...list(pm.lessonsLearned.gotLucky),
    '',
    '## Timeline (KST)',
    '',
    ...(pm.timeline.length === 0 ? [`- ${todo}`] : pm.timeline.map((t) => `- ${t.at.kst}: ${t.event}`)),
    '',
  ];
  return out.join('\n');
}

function renderSlack(pm: Postmortem): string {
  const e = escapeSlack;
  const todo = `_${TODO}_`;
  const bullets = (items: readonly string[]) => (items.length === 0 ? [`• ${todo}`] : items.map((i) => `• ${e(i)}`));
  const out = [
    `*Postmortem (draft): ${e(pm.title)}*`,
    `*Date:* ${pm.date} (KST)   *Severity:* ${pm.severity}   *Authors:* ${pm.authors.length ? e(pm.authors.join(', ')) : todo}`,
    `*Due:* ${pm.due.kst}, ${pm.dueRule}`,
    '',
    `*Summary*\n${e(pm.summary)}`,
    '',
    '*Impact*',
    `• Duration: ${durationText(pm)}`,
    ...impactLines(pm.impact.figures).map((l) => `• ${l}`),
    '',
    '*Root causes*',
    ...bullets(pm.rootCauses),
    '',
    `*Trigger*\n${pm.trigger ? e(pm.trigger) : todo}`,
    '',
    `*Resolution*\n${pm.resolution ? e(pm.resolution) : todo}`,
    '',
    `*Detection*\n${pm.detection ? e(pm.detection) : todo}`,
    '',
    '*Responders*',
    ...bullets(pm.responders),
    '',
    '*Action items*',
    ...(pm.actionItems.length === 0
      ? [`• ${todo}`]
      : pm.actionItems.map((a) => `• ${e(a.item)} (${a.type}; owner: ${e(a.owner)}; due: ${a.due}; ticket: ${a.ticket ? e(a.ticket) : 'none yet'})`)),
    '',
    '*Lessons learned*',
    '_What went well_',
    ...bullets(pm.lessonsLearned.wentWell),
    '_What went wrong_',
    ...bullets(pm.lessonsLearned.wentWrong),
    '_Where we got lucky_',
    ...bullets(pm.lessonsLearned.gotLucky),
    '',
    '*Timeline (KST)*',
    ...(pm.timeline.length === 0 ? [`• ${todo}`] : pm.timeline.map((t) => `• ${t.at.kst}: ${e(t.event)}`)),
    '',
  ];
  return out.join('\n');
}

/** The postmortem as Markdown (the file `incident end` writes), Slack mrkdwn, or JSON. */
export function renderPostmortem(pm: Postmortem, format: OutputFormat): string {
  switch (format) {
    case 'markdown':
      return renderMarkdown(pm);
    case 'slack':
      return renderSlack(pm);
    case 'json':
      return `${JSON.stringify(pm, null, 2)}\n`;
  }
}
