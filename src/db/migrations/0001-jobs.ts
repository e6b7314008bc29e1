import { type Kysely, sql } from 'kysely';

/** The jobs table: the record of every job in both runner modes, queried by operators with plain SQL. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE jobs (
      job_id uuid PRIMARY KEY,
      type text NOT NULL,
      status text NOT NULL DEFAULT 'queued'
        CONSTRAINT jobs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      payload jsonb NOT NULL DEFAULT '{}'::jsonb,
      result jsonb,
      error_message text,
      attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
      priority integer NOT NULL DEFAULT 0,
      run_at timestamptz NOT NULL DEFAULT now(),
      idempotency_key text,
      cancel_requested_at timestamptz,
      locked_by text,
      lease_expires_at timestamptz,
      progress jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX jobs_idempotency_key_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL`.execute(db);
  // The claim walks only queued rows, so it keeps its speed as finished rows pile up.
  await sql`CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at, created_at) WHERE status = 'queued'`.execute(db);
  // Lease expiry sweep: only running rows.
  await sql`CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE status = 'running'`.execute(db);
  // The runbook's section-B queries filter on created_at and group by status; listing pages by it.
  await sql`CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC, job_id DESC)`.execute(db);
  await sql`CREATE INDEX jobs_status_created_at_idx ON jobs (status, created_at DESC)`.execute(db);
  await sql`CREATE INDEX jobs_type_created_at_idx ON jobs (type, created_at DESC)`.execute(db);

  // Wake-ups live in the database so every writer (API, worker, an operator's UPDATE) wakes runners.
  // Identical notifications in one transaction are folded into one by PostgreSQL.
  await sql`
    CREATE FUNCTION evalops_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'queued' THEN
        PERFORM pg_notify('evalops_jobs', '');
      ELSIF NEW.status = 'running' AND NEW.cancel_requested_at IS NOT NULL
            AND (TG_OP = 'INSERT' OR OLD.cancel_requested_at IS NULL) THEN
        PERFORM pg_notify('evalops_job_cancel', NEW.job_id::text);
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, cancel_requested_at ON jobs
    FOR EACH ROW EXECUTE FUNCTION evalops_jobs_notify()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE jobs`.execute(db);
  await sql`DROP FUNCTION evalops_jobs_notify()`.execute(db);
}
