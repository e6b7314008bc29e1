import { type Kysely, sql } from 'kysely';

/**
 * The runbook as data: per-minute request counts that every API process flushes (the measured
 * availability SLI, which survives restarts and adds up across instances), incidents with their
 * timeline, and indexes that let the job and evaluation SLIs count outcomes by the time they ended.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per minute, process, route class and status code. A process adds to its own rows
  // (INSERT … ON CONFLICT DO UPDATE), so flushing a minute twice never double counts; the SLI sums
  // over instances. duration_buckets holds counts per latency bucket (bounds in
  // src/obs/request-counter.ts), so a p99 can be read for any window across every instance.
  await sql`
    CREATE TABLE request_counts (
      minute timestamptz NOT NULL,
      instance_id text NOT NULL,
      route_class text NOT NULL,
      status_code smallint NOT NULL CHECK (status_code BETWEEN 100 AND 599),
      requests integer NOT NULL CHECK (requests >= 0),
      duration_ms_sum double precision NOT NULL DEFAULT 0,
      duration_buckets integer[] NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (minute, instance_id, route_class, status_code)
    )`.execute(db);

  await sql`
    CREATE TABLE incidents (
      incident_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      severity text NOT NULL CHECK (severity IN ('P1', 'P2')),
      summary text NOT NULL,
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
      phase text NOT NULL DEFAULT 'investigating',
      started_at timestamptz NOT NULL DEFAULT now(),
      ended_at timestamptz,
      impact jsonb NOT NULL DEFAULT '{}'::jsonb,
      affected jsonb NOT NULL DEFAULT '[]'::jsonb,
      mitigation jsonb NOT NULL DEFAULT '[]'::jsonb,
      root_cause text,
      resolution text,
      prevention jsonb NOT NULL DEFAULT '[]'::jsonb,
      postmortem_due_at timestamptz,
      postmortem jsonb,
      created_by text,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX incidents_started_at_idx ON incidents (started_at DESC)`.execute(db);

  // The timeline: every message sent, as sent.
  await sql`
    CREATE TABLE incident_events (
      event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      incident_id integer NOT NULL REFERENCES incidents (incident_id) ON DELETE CASCADE,
      at timestamptz NOT NULL DEFAULT now(),
      kind text NOT NULL CHECK (kind IN ('start', 'update', 'end')),
      summary text NOT NULL,
      message jsonb NOT NULL,
      actor text
    )`.execute(db);
  await sql`CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, at, event_id)`.execute(db);

  // The SLIs count outcomes when they happen (finished_at), over windows up to the SLO's 28 days.
  await sql`CREATE INDEX jobs_finished_at_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL`.execute(db);
  await sql`CREATE INDEX evaluation_runs_finished_at_idx ON evaluation_runs (finished_at) WHERE finished_at IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX evaluation_runs_finished_at_idx`.execute(db);
  await sql`DROP INDEX jobs_finished_at_idx`.execute(db);
  await sql`DROP TABLE incident_events`.execute(db);
  await sql`DROP TABLE incidents`.execute(db);
  await sql`DROP TABLE request_counts`.execute(db);
}
