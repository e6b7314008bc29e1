import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';

/** The incidents and incident_events tables, one named function per operation. */
type Db = Kysely<Database> | Transaction<Database>;

export interface IncidentRow {
  incident_id: number;
  severity: 'P1' | 'P2';
  summary: string;
  status: 'open' | 'resolved';
  phase: string;
  started_at: Date;
  ended_at: Date | null;
  impact: unknown;
  affected: unknown;
  mitigation: unknown;
  root_cause: string | null;
  resolution: string | null;
  prevention: unknown;
  postmortem_due_at: Date | null;
  postmortem: unknown;
  created_by: string | null;
  updated_at: Date;
}

export interface IncidentEventRow {
  event_id: number;
  incident_id: number;
  at: Date;
  kind: 'start' | 'update' | 'end';
  summary: string;
  message: unknown;
  actor: string | null;
}

export async function insertIncident(
  db: Db,
  values: { severity: 'P1' | 'P2'; summary: string; startedAt: Date; impact: unknown; affected: string[]; mitigation: string[]; createdBy: string | null },
): Promise<IncidentRow> {
  return (await db
    .insertInto('incidents')
    .values({
      severity: values.severity,
      summary: values.summary,
      started_at: values.startedAt,
      impact: JSON.stringify(values.impact),
      affected: JSON.stringify(values.affected),
      mitigation: JSON.stringify(values.mitigation),
      created_by: values.createdBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow()) as IncidentRow;
}

export async function findIncident(db: Db, id: number): Promise<IncidentRow | undefined> {
  return (await db.selectFrom('incidents').selectAll().where('incident_id', '=', id).executeTakeFirst()) as IncidentRow | undefined;
}

/** Open incidents, newest first. */
export async function openIncidents(db: Db): Promise<IncidentRow[]> {
  return (await db.selectFrom('incidents').selectAll().where('status', '=', 'open').orderBy('started_at', 'desc').orderBy('incident_id', 'desc').execute()) as IncidentRow[];
}

export async function listIncidents(db: Db, limit: number): Promise<IncidentRow[]> {
  return (await db.selectFrom('incidents').selectAll().orderBy('started_at', 'desc').orderBy('incident_id', 'desc').limit(limit).execute()) as IncidentRow[];
}

/** Records an update; only an open incident changes. */
export async function updateOpenIncident(db: Db, id: number, values: { phase: string; impact: unknown; affected: string[]; mitigation: string[] }): Promise<IncidentRow | undefined> {
  return (await db
    .updateTable('incidents')
    .set({
      phase: values.phase,
      impact: JSON.stringify(values.impact),
      affected: JSON.stringify(values.affected),
      mitigation: JSON.stringify(values.mitigation),
      updated_at: sql`now()` as any,
    })
    .where('incident_id', '=', id)
    .where('status', '=', 'open')
    .returningAll()
    .executeTakeFirst()) as IncidentRow | undefined;
}

/** Resolves an open incident; undefined when it was not open. */
export async function resolveIncident(
  db: Db,
  id: number,
  values: { endedAt: Date; rootCause: string; resolution: string; prevention: unknown; postmortemDueAt: Date; postmortem: unknown; impact: unknown },
): Promise<IncidentRow | undefined> {
  return (await db
    .updateTable('incidents')
    .set({
      status: 'resolved',
      phase: 'resolved',
      ended_at: values.endedAt,
      root_cause: values.rootCause,
      resolution: values.resolution,
      prevention: JSON.stringify(values.prevention),
      postmortem_due_at: values.postmortemDueAt,
      postmortem: JSON.stringify(values.postmortem),
      impact: JSON.stringify(values.impact),
      updated_at: sql`now()` as any,
    })
    .where('incident_id', '=', id)
    .where('status', '=', 'open')
    .returningAll()
    .executeTakeFirst()) as IncidentRow | undefined;
}

export async function insertIncidentEvent(db: Db, values: { incidentId: number; at: Date; kind: 'start' | 'update' | 'end'; summary: string; message: unknown; actor: string | null }): Promise<void> {
  await db
    .insertInto('incident_events')
    .values({ incident_id: values.incidentId, at: values.at, kind: values.kind, summary: values.summary, message: JSON.stringify(values.message), actor: values.actor })
    .execute();
}

/** The timeline of one incident, oldest first. */
export async function incidentEvents(db: Db, id: number): Promise<IncidentEventRow[]> {
  return (await db.selectFrom('incident_events').selectAll().where('incident_id', '=', id).orderBy('at').orderBy('event_id').execute()) as IncidentEventRow[];
}
