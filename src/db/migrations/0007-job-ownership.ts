import { type Kysely, sql } from 'kysely';

/** The partial unique index that lets one job at a time execute an evaluation run. */
export const ACTIVE_RUN_JOB_INDEX = 'jobs_evaluation_run_active_key';

/**
 * Two guarantees the jobs table now holds itself, whatever process or statement writes it:
 *
 * - An evaluation run is executed by at most one job at any moment: a unique index over the run id
 *   of `evaluation` jobs that are queued or running. Two jobs on one run raced on its temporary
 *   files and left a succeeded run carrying the loser's error; timing cannot rule that out, the
 *   index does. Jobs already active on a run that has another (left by the jobs API accepting
 *   internal types) are cancelled first, keeping the one the run points to, else the oldest.
 * - `requested_run_at`: the run_at the submit named (null when it named none). `run_at` moves on
 *   every retry, so only this column lets a repeated idempotency key be compared with the first
 *   request's run_at. Rows never attempted keep their run_at as the best record there is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    WITH ranked AS (
      SELECT j.job_id, j.payload->>'run_id' AS run_id,
        row_number() OVER (PARTITION BY j.payload->>'run_id'
                           ORDER BY (r.job_id IS NOT DISTINCT FROM j.job_id) DESC, j.created_at, j.job_id) AS n,
        first_value(j.job_id) OVER (PARTITION BY j.payload->>'run_id'
                           ORDER BY (r.job_id IS NOT DISTINCT FROM j.job_id) DESC, j.created_at, j.job_id) AS kept
      FROM jobs AS j LEFT JOIN evaluation_runs AS r ON r.run_id::text = j.payload->>'run_id'
      WHERE j.type = 'evaluation' AND j.status IN ('queued', 'running') AND j.payload ? 'run_id')
    UPDATE jobs SET status = 'cancelled', cancel_requested_at = coalesce(jobs.cancel_requested_at, now()),
      error_message = 'cancelled by migration 0007: job ' || ranked.kept || ' also executes run ' || ranked.run_id
                      || '; a run is executed by one job at a time',
      finished_at = now(), locked_by = NULL, lease_expires_at = NULL, updated_at = now()
    FROM ranked WHERE jobs.job_id = ranked.job_id AND ranked.n > 1`.execute(db);
  await sql`
    CREATE UNIQUE INDEX ${sql.raw(ACTIVE_RUN_JOB_INDEX)} ON jobs ((payload->>'run_id'))
    WHERE type = 'evaluation' AND status IN ('queued', 'running')`.execute(db);

  await sql`ALTER TABLE jobs ADD COLUMN requested_run_at timestamptz`.execute(db);
  await sql`
    UPDATE jobs SET requested_run_at = run_at
    WHERE idempotency_key IS NOT NULL AND attempts = 0 AND started_at IS NULL AND run_at <> created_at`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs DROP COLUMN requested_run_at`.execute(db);
  await sql`DROP INDEX ${sql.raw(ACTIVE_RUN_JOB_INDEX)}`.execute(db);
}
