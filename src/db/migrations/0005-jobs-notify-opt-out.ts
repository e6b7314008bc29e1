import { type Kysely, sql } from 'kysely';

/**
 * The wake-up trigger on `jobs` fires only for the rows it may notify about, and not for a queued
 * row whose statement set `evalops.skip_notify` to `on` (transaction-local).
 *
 * Every NOTIFY makes its transaction's commit take PostgreSQL's one notification-queue lock, so a
 * NOTIFY per submitted job put every submit's commit in a single line. The API's batched submit
 * sets the option and wakes runners itself (its own runner directly, the other API processes with
 * one NOTIFY now and then); any other writer (psql, a script, an operator's UPDATE, a retry) sets
 * nothing and notifies as before. Cancel notifications are unchanged. The WHEN clause also spares
 * every claim and completion (running, succeeded, failed rows) a call of the trigger function.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, cancel_requested_at ON jobs
    FOR EACH ROW
    WHEN ((NEW.status = 'queued' AND current_setting('evalops.skip_notify', true) IS DISTINCT FROM 'on')
          OR (NEW.status = 'running' AND NEW.cancel_requested_at IS NOT NULL))
    EXECUTE FUNCTION evalops_jobs_notify()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, cancel_requested_at ON jobs
    FOR EACH ROW EXECUTE FUNCTION evalops_jobs_notify()`.execute(db);
}
