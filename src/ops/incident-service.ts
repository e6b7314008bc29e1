import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.ts';
import { AppError, conflict, notFound, validation } from '../errors.ts';
import type { SloConfig } from '../obs/slo-config.ts';
import { measureImpact, type MeasuredImpactDetail } from './incident-impact.ts';
import { parseInput, SEVERITIES, stamp, type Stamp } from './incident-fields.ts';
import {
  INCIDENT_PHASES,
  incidentEndMessage,
  incidentStartMessage,
  incidentUpdateMessage,
  preventionItemSchema,
  type IncidentEndMessage,
  type IncidentStartMessage,
  type IncidentUpdateMessage,
  type PreventionItem,
} from './incident-templates.ts';
import * as store from './incident-store.ts';
import { systemClock, type Clock } from './kst-time.ts';
import { type Postmortem, postmortemFromIncidentEnd } from './postmortem-template.ts';
import type { ReadQuery } from './read-query.ts';

/**
 * Incidents as the runbook runs them: `start` measures the impact and stores the incident with its
 * first message; `update` re-measures and adds a message; `end` resolves it and builds the postmortem
 * skeleton with its due date. Every message is kept, as sent, in the incident's timeline.
 */

/** `INC-12`. */
export const incidentRef = (id: number) => `INC-${id}`;

/** `INC-12` or `12` to 12. */
export function parseIncidentRef(ref: string): number {
  const match = /^(?:INC-)?([1-9]\d{0,9})$/i.exec(ref.trim());
  if (!match) throw validation(`incident: "${ref}" is not an incident id (INC-12, or 12)`, { field: 'id' });
  return Number(match[1]);
}

const text = (what: string) => z.string().trim().min(1, { message: `must say ${what}` });
const windowSeconds = z.number().int().min(60, { message: 'must be at least 60 seconds' }).max(28 * 86_400, { message: 'must be at most 28 days' });

export const startRequestSchema = z.strictObject({
  severity: z.enum(SEVERITIES, { message: 'accepts P1 or P2' }),
  summary: text('what is wrong'),
  affected: z.array(text('an endpoint or function')).default([]),
  mitigation: z.array(text('what was done')).default([]),
  /** Impact is measured over this much of the recent past. */
  window_seconds: windowSeconds.default(1800),
  actor: z.string().max(100).optional(),
});
export type StartRequest = z.input<typeof startRequestSchema>;

export const updateRequestSchema = z.strictObject({
  id: z.string().optional(),
  phase: z.enum(INCIDENT_PHASES, { message: `accepts ${INCIDENT_PHASES.join(', ')}` }).default('investigating'),
  progress: text('what changed since the last message'),
  affected: z.array(text('an endpoint or function')).optional(),
  mitigation: z.array(text('what was done')).default([]),
  window_seconds: windowSeconds.default(1800),
  actor: z.string().max(100).optional(),
});
export type UpdateRequest = z.input<typeof updateRequestSchema>;

export const endRequestSchema = z.strictObject({
  id: z.string().optional(),
  root_cause: text('the root cause'),
  resolution: text('how service was recovered or mitigated'),
  prevention: z.array(preventionItemSchema).default([]),
  /** Seoul dates that are not business days (public holidays), for a P2's due date. */
  holidays: z.array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date as YYYY-MM-DD' })).default([]),
  actor: z.string().max(100).optional(),
});
export type EndRequest = z.input<typeof endRequestSchema>;

/** An incident as the CLI and the JSON output show it. */
export interface IncidentView {
  readonly id: string;
  readonly severity: 'P1' | 'P2';
  readonly summary: string;
  readonly status: 'open' | 'resolved';
  readonly phase: string;
  readonly started_at: Stamp;
  readonly ended_at: Stamp | null;
  readonly impact: unknown;
  readonly affected: string[];
  readonly mitigation: string[];
  readonly root_cause: string | null;
  readonly resolution: string | null;
  readonly prevention: PreventionItem[];
  readonly postmortem_due_at: Stamp | null;
}

export interface TimelineEvent {
  readonly at: Stamp;
  readonly kind: 'start' | 'update' | 'end';
  readonly summary: string;
  readonly actor: string | null;
  readonly message: unknown;
}

function toView(row: store.IncidentRow): IncidentView {
  return {
    id: incidentRef(row.incident_id),
    severity: row.severity,
    summary: row.summary,
    status: row.status,
    phase: row.phase,
    started_at: stamp(new Date(row.started_at)),
    ended_at: row.ended_at ? stamp(new Date(row.ended_at)) : null,
    impact: row.impact,
    affected: (row.affected as string[]) ?? [],
    mitigation: (row.mitigation as string[]) ?? [],
    root_cause: row.root_cause,
    resolution: row.resolution,
    prevention: (row.prevention as PreventionItem[]) ?? [],
    postmortem_due_at: row.postmortem_due_at ? stamp(new Date(row.postmortem_due_at)) : null,
  };
}

export interface IncidentServiceDeps {
  db: Kysely<Database>;
  /** Read-only queries for the measured figures. */
  read: ReadQuery;
  /** For the bad statuses of the job and evaluation SLOs. */
  slo?: SloConfig | undefined;
  clock?: Clock;
}

export class IncidentService {
  readonly #db: Kysely<Database>;
  readonly #read: ReadQuery;
  readonly #slo: SloConfig | undefined;
  readonly #clock: Clock;

  constructor(deps: IncidentServiceDeps) {
    this.#db = deps.db;
    this.#read = deps.read;
    this.#slo = deps.slo;
    this.#clock = deps.clock ?? systemClock;
  }

  /** Opens an incident: measures the impact, stores it and its start message. */
  async start(input: StartRequest): Promise<{ incident: IncidentView; message: IncidentStartMessage; measured: MeasuredImpactDetail }> {
    const v = parseInput(startRequestSchema, input, 'incident start');
    // Measured before the transaction: the embedded database runs one connection at a time.
    const measured = await measureImpact(this.#read, v.window_seconds, this.#slo);
    const now = this.#clock();
    const affected = v.affected.length ? v.affected : [...measured.affected];
    return this.#db.transaction().execute(async (trx) => {
      const row = await store.insertIncident(trx, { severity: v.severity, summary: v.summary, startedAt: now, impact: measured, affected, mitigation: v.mitigation, createdBy: v.actor ?? null });
      const message = incidentStartMessage({ id: incidentRef(row.incident_id), severity: v.severity, summary: v.summary, impact: measured.figures, affected, mitigation: v.mitigation }, () => now);
      await store.insertIncidentEvent(trx, { incidentId: row.incident_id, at: now, kind: 'start', summary: `started (${v.severity}): ${v.summary}`, message, actor: v.actor ?? null });
      return { incident: toView(row), message, measured };
    });
  }

  /** Adds an update: phase, progress, re-measured impact, mitigation so far. */
  async update(input: UpdateRequest): Promise<{ incident: IncidentView; message: IncidentUpdateMessage; measured: MeasuredImpactDetail }> {
    const v = parseInput(updateRequestSchema, input, 'incident update');
    const current = await this.#resolve(v.id);
    const measured = await measureImpact(this.#read, v.window_seconds, this.#slo);
    const now = this.#clock();
    const mitigation = [...((current.mitigation as string[]) ?? []), ...v.mitigation];
    const affected = v.affected ?? ((current.affected as string[]) ?? []);
    return this.#db.transaction().execute(async (trx) => {
      const row = await store.updateOpenIncident(trx, current.incident_id, { phase: v.phase, impact: measured, affected, mitigation });
      if (!row) throw conflict(`incident ${incidentRef(current.incident_id)} is already resolved`);
      const message = incidentUpdateMessage(
        { id: incidentRef(row.incident_id), severity: row.severity, summary: row.summary, phase: v.phase, progress: v.progress, impact: measured.figures, affected, mitigation },
        () => now,
      );
      await store.insertIncidentEvent(trx, { incidentId: row.incident_id, at: now, kind: 'update', summary: `${v.phase}: ${v.progress}`, message, actor: v.actor ?? null });
      return { incident: toView(row), message, measured };
    });
  }

  /** Resolves the incident and builds its postmortem skeleton, due 24 h (P1) or 3 business days (P2) after the end. */
  async end(input: EndRequest): Promise<{ incident: IncidentView; message: IncidentEndMessage; postmortem: Postmortem; measured: MeasuredImpactDetail }> {
    const v = parseInput(endRequestSchema, input, 'incident end');
    const current = await this.#resolve(v.id);
    const now = this.#clock();
    const startedAt = new Date(current.started_at);
    // The postmortem's figures cover the whole incident, and the window measured before it was
    // opened (the failures began before someone started the incident).
    const before = Number((current.impact as { window_seconds?: unknown } | null)?.window_seconds) || 1800;
    const measured = await measureImpact(this.#read, Math.min(28 * 86_400, before + Math.ceil((now.getTime() - startedAt.getTime()) / 1000)), this.#slo);
    const message = incidentEndMessage(
      { id: incidentRef(current.incident_id), severity: current.severity, summary: current.summary, startedAt, rootCause: v.root_cause, resolution: v.resolution, prevention: v.prevention },
      () => now,
      { holidays: new Set(v.holidays) },
    );
    const events = await store.incidentEvents(this.#db, current.incident_id);
    const postmortem = postmortemFromIncidentEnd(message, {
      authors: v.actor ? [v.actor] : [],
      responders: [...new Set(events.map((e) => e.actor).filter((a): a is string => !!a))],
      impact: measured.figures,
      timeline: [...events.map((e) => ({ at: new Date(e.at), event: e.summary })), { at: now, event: `resolved: ${v.root_cause}` }],
      holidays: v.holidays,
    });
    return this.#db.transaction().execute(async (trx) => {
      const row = await store.resolveIncident(trx, current.incident_id, {
        endedAt: now,
        rootCause: v.root_cause,
        resolution: v.resolution,
        prevention: v.prevention,
        postmortemDueAt: new Date(message.postmortemDue.iso),
        postmortem,
        impact: measured,
      });
      if (!row) throw conflict(`incident ${incidentRef(current.incident_id)} is already resolved`);
      await store.insertIncidentEvent(trx, { incidentId: row.incident_id, at: now, kind: 'end', summary: `resolved: ${v.root_cause}`, message, actor: v.actor ?? null });
      return { incident: toView(row), message, postmortem, measured };
    });
  }

  async list(limit = 50): Promise<IncidentView[]> {
    return (await store.listIncidents(this.#db, limit)).map(toView);
  }

  /** One incident with its timeline; the latest when `ref` is omitted. */
  async show(ref: string | undefined): Promise<{ incident: IncidentView; timeline: TimelineEvent[] }> {
    let row: store.IncidentRow | undefined;
    if (ref === undefined) row = (await store.listIncidents(this.#db, 1))[0];
    else row = await store.findIncident(this.#db, parseIncidentRef(ref));
    if (!row) throw ref === undefined ? new AppError('NOT_FOUND', 'no incident has been recorded yet') : notFound('incident', ref);
    const events = await store.incidentEvents(this.#db, row.incident_id);
    return {
      incident: toView(row),
      timeline: events.map((e) => ({ at: stamp(new Date(e.at)), kind: e.kind, summary: e.summary, actor: e.actor, message: e.message })),
    };
  }

  /** The incident named by `ref`, or the only open one. */
  async #resolve(ref: string | undefined): Promise<store.IncidentRow> {
    if (ref !== undefined) {
      const row = await store.findIncident(this.#db, parseIncidentRef(ref));
      if (!row) throw notFound('incident', ref);
      if (row.status !== 'open') throw conflict(`incident ${incidentRef(row.incident_id)} is already resolved`);
      return row;
    }
    const open = await store.openIncidents(this.#db);
    if (open.length === 0) throw conflict('no incident is open; start one with `evalops incident start`');
    if (open.length > 1) throw validation(`${open.length} incidents are open (${open.map((r) => incidentRef(r.incident_id)).join(', ')}); name one with --id`, { field: 'id' });
    return open[0]!;
  }
}
