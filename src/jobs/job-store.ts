import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database, JobRow, JobStatus } from '../db/schema.ts';
import { sourcesOf } from './job-state.ts';

/**
 * The jobs table's SQL, one named function per operation. Each takes `db` (or a transaction)
 * explicitly so callers can compose them. Status changes are conditional on the transition table.
 */
type Db = Kysely<Database> | Transaction<Database>;

export interface InsertJob {
  jobId: string;
  type: string;
  payload: unknown;
  maxAttempts: number;
  priority: number;
  runAt: Date | undefined;
  idempotencyKey: string | undefined;
}

export interface InsertOptions {
  /**
   * Sets `evalops.skip_notify` for the statement (transaction-local), so the wake-up trigger stays
   * silent: the caller wakes runners itself (migration 0005). Inside a transaction the setting lasts
   * until it ends: use it there only when every row the transaction queues is woken by the caller
   * (the atomic batch of JobInsertBatcher.insertAtomic).
   */
  skipNotify?: boolean;
  /** With skipNotify: one `NOTIFY evalops_jobs` with this payload, sent at the statement's commit. */
  notify?: string | undefined;
}

/**
 * Inserts queued jobs in one statement: one commit for a group of submits. A job whose idempotency
 * key is already taken, by a stored row or by an earlier job of the same call, is left out; the
 * rows returned are those inserted, in no particular order. Rows go in ordered by idempotency key,
 * so two concurrent calls sharing keys wait on each other in one order and never deadlock.
 */
export async function insertJobs(db: Db, jobs: readonly InsertJob[], opts: InsertOptions = {}): Promise<JobRow[]> {
  if (jobs.length === 0) return [];
  const notify = opts.notify !== undefined ? sql`, pg_notify('evalops_jobs', ${opts.notify})` : sql``;
  const quiet = opts.skipNotify
    ? { with: sql`WITH quiet AS MATERIALIZED (SELECT set_config('evalops.skip_notify', 'on', true) AS skip ${notify})`, join: sql`CROSS JOIN quiet WHERE quiet.skip = 'on'` }
    : { with: sql``, join: sql`` };
  const { rows } = await sql<JobRow>`
    ${quiet.with}
    INSERT INTO jobs (job_id, type, payload, max_attempts, priority, run_at, requested_run_at, idempotency_key)
    SELECT v.job_id, v.type, v.payload::jsonb, v.max_attempts, v.priority, coalesce(v.run_at, now()), v.run_at, v.idempotency_key
    FROM unnest(${jobs.map((j) => j.jobId)}::uuid[], ${jobs.map((j) => j.type)}::text[], ${jobs.map((j) => JSON.stringify(j.payload ?? {}))}::text[],
                ${jobs.map((j) => j.maxAttempts)}::int[], ${jobs.map((j) => j.priority)}::int[], ${jobs.map((j) => j.runAt ?? null)}::timestamptz[],
                ${jobs.map((j) => j.idempotencyKey ?? null)}::text[]) WITH ORDINALITY
      AS v(job_id, type, payload, max_attempts, priority, run_at, idempotency_key, n)
    ${quiet.join}
    ORDER BY v.idempotency_key, v.n
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *`.execute(db);
  return rows;
}

export function findJob(db: Db, jobId: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
}

/** The queued or running `evaluation` job of a run, if any (at most one: migration 0007's index). */
export function findActiveRunJob(db: Db, runId: string): Promise<JobRow | undefined> {
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('type', '=', 'evaluation')
    .where('status', 'in', ['queued', 'running'])
    .where(sql<boolean>`payload->>'run_id' = ${runId}`)
    .executeTakeFirst();
}

export function findJobByIdempotencyKey(db: Db, key: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('idempotency_key', '=', key).executeTakeFirst();
}

/** The stored jobs holding any of these idempotency keys (at most one per key), in no particular order. */
export async function findJobsByIdempotencyKeys(db: Db, keys: readonly string[]): Promise<JobRow[]> {
  if (keys.length === 0) return [];
  return db.selectFrom('jobs').selectAll().where(sql<boolean>`idempotency_key = ANY(${[...keys]}::text[])`).execute();
}

export interface ListJobsFilter {
  statuses?: JobStatus[];
  type?: string;
  since?: Date;
  /** The last job of the previous page. */
  after?: { createdAt: Date; jobId: string } | undefined;
  limit: number;
}

/** Newest first; keyset pagination on (created_at, job_id). */
export async function listJobs(db: Db, filter: ListJobsFilter): Promise<JobRow[]> {
  let query = db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').orderBy('job_id', 'desc').limit(filter.limit);
  if (filter.statuses?.length) query = query.where('status', 'in', filter.statuses);
  if (filter.type) query = query.where('type', '=', filter.type);
  if (filter.since) query = query.where('created_at', '>=', filter.since);
  if (filter.after) {
    const { jobId } = filter.after;
    // Compare against the stored timestamp: JavaScript dates drop PostgreSQL's microseconds.
    query = query.where(sql<boolean>`(created_at, job_id) < (SELECT c.created_at, c.job_id FROM jobs AS c WHERE c.job_id = ${jobId})`);
  }
  return query.execute();
}

/** The runbook's section-B distribution: status counts of jobs created since `since`. */
export async function statusCounts(db: Db, since: Date): Promise<Record<JobStatus, number>> {
  const rows = await db
    .selectFrom('jobs')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .where('created_at', '>=', since)
    .groupBy('status')
    .execute();
  const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  for (const row of rows) counts[row.status] = Number(row.count);
  return counts;
}

export interface BacklogSummary {
  queued: number;
  running: number;
  oldestQueuedAgeMs: number | null;
  failedLastHour: number;
}

/** Queue depth and age for health checks and metrics, in one round trip. */
export async function backlogSummary(db: Db): Promise<BacklogSummary> {
  const { rows } = await sql<{ queued: number; running: number; oldest_ms: number | null; failed_1h: number }>`
    SELECT
      (SELECT count(*) FROM jobs WHERE status = 'queued')::int AS queued,
      (SELECT count(*) FROM jobs WHERE status = 'running')::int AS running,
      (SELECT (extract(epoch FROM now() - min(run_at)) * 1000)::float8 FROM jobs WHERE status = 'queued' AND run_at <= now()) AS oldest_ms,
      (SELECT count(*) FROM jobs WHERE status = 'failed' AND finished_at >= now() - INTERVAL '1 hour')::int AS failed_1h`.execute(db);
  const row = rows[0]!;
  return {
    queued: Number(row.queued),
    running: Number(row.running),
    oldestQueuedAgeMs: row.oldest_ms === null ? null : Math.max(0, Math.round(Number(row.oldest_ms))),
    failedLastHour: Number(row.failed_1h),
  };
}

/**
 * Claims up to `limit` due jobs for `workerId` with FOR UPDATE SKIP LOCKED, in one statement
 * (no explicit transaction: the embedded driver serialises connections, see STACK-NOTES).
 */
export async function claimJobs(db: Db, workerId: string, limit: number, leaseMs: number, types?: readonly string[]): Promise<JobRow[]> {
  const { rows } = await sql<JobRow>`${claimDue(workerId, limit, leaseMs, types)}`.execute(db);
  return byClaimOrder(rows);
}

/**
 * Marks `completions` succeeded (as completeJobs does) and claims up to `limit` due jobs (as
 * claimJobs does) in one statement: a runner refills the slots its finished jobs free with one
 * round trip and one commit. Returns the claimed rows.
 */
export async function completeAndClaimDue(db: Db, workerId: string, completions: readonly Completion[], limit: number, leaseMs: number, types?: readonly string[]): Promise<JobRow[]> {
  const ids = completions.map((c) => c.jobId);
  const results = completions.map((c) => (c.result === undefined ? null : JSON.stringify(c.result)));
  const { rows } = await sql<JobRow>`
    WITH done AS (
      UPDATE jobs AS j SET status = 'succeeded', result = v.result::jsonb,
        finished_at = now(), updated_at = now(), locked_by = NULL, lease_expires_at = NULL
      FROM (SELECT unnest(${ids}::uuid[]) AS job_id, unnest(${results}::text[]) AS result) AS v
      WHERE j.job_id = v.job_id AND j.status = 'running' AND j.locked_by = ${workerId}
      RETURNING j.job_id)
    ${claimDue(workerId, limit, leaseMs, types)}`.execute(db);
  return byClaimOrder(rows);
}

function claimDue(workerId: string, limit: number, leaseMs: number, types?: readonly string[]) {
  const typeFilter = types?.length ? sql`AND type = ANY(${[...types]}::text[])` : sql``;
  return sql`
    UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ${workerId},
      lease_expires_at = now() + ${leaseMs} * INTERVAL '1 millisecond', started_at = now(), updated_at = now()
    WHERE job_id IN (
      SELECT job_id FROM jobs
      WHERE status = 'queued' AND run_at <= now() ${typeFilter}
      ORDER BY priority DESC, run_at, created_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING *`;
}

const byClaimOrder = (rows: JobRow[]) => rows.sort((a, b) => b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime());

/** Extends the leases of the jobs `workerId` holds; returns those still held, with cancel requests. */
export async function renewLeases(db: Db, workerId: string, jobIds: readonly string[], leaseMs: number): Promise<Array<{ job_id: string; cancel_requested_at: Date | null }>> {
  if (jobIds.length === 0) return [];
  const { rows } = await sql<{ job_id: string; cancel_requested_at: Date | null }>`
    UPDATE jobs SET lease_expires_at = now() + ${leaseMs} * INTERVAL '1 millisecond', updated_at = now()
    WHERE job_id = ANY(${[...jobIds]}::uuid[]) AND status = 'running' AND locked_by = ${workerId}
    RETURNING job_id, cancel_requested_at`.execute(db);
  return rows;
}

export interface Completion {
  jobId: string;
  result: unknown;
}

/**
 * Marks many held jobs succeeded in one statement (completions are batched like graphile-worker's).
 * error_message is kept: it tells what an earlier attempt went through.
 */
export async function completeJobs(db: Db, workerId: string, completions: readonly Completion[]): Promise<string[]> {
  if (completions.length === 0) return [];
  const ids = completions.map((c) => c.jobId);
  const results = completions.map((c) => (c.result === undefined ? null : JSON.stringify(c.result)));
  const { rows } = await sql<{ job_id: string }>`
    UPDATE jobs AS j SET status = 'succeeded', result = v.result::jsonb,
      finished_at = now(), updated_at = now(), locked_by = NULL, lease_expires_at = NULL
    FROM (SELECT unnest(${ids}::uuid[]) AS job_id, unnest(${results}::text[]) AS result) AS v
    WHERE j.job_id = v.job_id AND j.status = 'running' AND j.locked_by = ${workerId}
    RETURNING j.job_id`.execute(db);
  return rows.map((r) => r.job_id);
}

/** Ends a held job in `failed` or `cancelled`. */
export async function finishJob(db: Db, workerId: string, jobId: string, status: 'failed' | 'cancelled', errorMessage: string | null): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set({ status, error_message: errorMessage, finished_at: sql`now()` as any, updated_at: sql`now()` as any, locked_by: null, lease_expires_at: null })
    .where('job_id', '=', jobId)
    .where('status', 'in', sourcesOf(status))
    .where('locked_by', '=', workerId)
    .returningAll()
    .executeTakeFirst();
}

/** Puts a held job back in the queue: after a failed attempt (`runAt` later), or handed back unrun at shutdown. */
export async function requeueJob(db: Db, workerId: string, jobId: string, opts: { runAt: Date; errorMessage: string | null; refundAttempt: boolean }): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set((eb) => ({
      status: 'queued',
      run_at: opts.runAt,
      error_message: opts.errorMessage,
      attempts: opts.refundAttempt ? eb('attempts', '-', 1) : eb.ref('attempts'),
      locked_by: null,
      lease_expires_at: null,
      updated_at: sql`now()` as any,
    }))
    .where('job_id', '=', jobId)
    .where('status', '=', 'running')
    .where('locked_by', '=', workerId)
    .returningAll()
    .executeTakeFirst();
}

export async function setProgress(db: Db, workerId: string, jobId: string, progress: unknown): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ progress: JSON.stringify(progress), updated_at: sql`now()` as any })
    .where('job_id', '=', jobId)
    .where('status', '=', 'running')
    .where('locked_by', '=', workerId)
    .execute();
}

/**
 * Takes back jobs whose holder stopped renewing its lease (a crashed or frozen process):
 * queued again while attempts remain, otherwise failed with a message saying it was lost.
 */
export async function recoverExpiredLeases(db: Db): Promise<Array<{ job_id: string; type: string; status: JobStatus }>> {
  const { rows } = await sql<{ job_id: string; type: string; status: JobStatus }>`
    UPDATE jobs SET
      status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                    WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
      error_message = 'lost: ' || coalesce(locked_by, 'its runner') || ' stopped renewing its lease (crashed or stalled) during attempt '
                      || attempts || ' of ' || max_attempts,
      run_at = now(),
      finished_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempts >= max_attempts THEN now() ELSE NULL END,
      locked_by = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE job_id IN (
      SELECT job_id FROM jobs WHERE status = 'running' AND lease_expires_at < now()
      FOR UPDATE SKIP LOCKED)
    RETURNING job_id, type, status`.execute(db);
  return rows;
}

/** Cancels a queued job at once; for a running one records the request (its runner aborts it). */
export async function requestCancel(db: Db, jobId: string): Promise<JobRow | undefined> {
  const queued = await db
    .updateTable('jobs')
    .set({ status: 'cancelled', cancel_requested_at: sql`now()` as any, finished_at: sql`now()` as any, updated_at: sql`now()` as any })
    .where('job_id', '=', jobId)
    .where('status', '=', 'queued')
    .returningAll()
    .executeTakeFirst();
  if (queued) return queued;
  return db
    .updateTable('jobs')
    .set({ cancel_requested_at: sql`coalesce(cancel_requested_at, now())` as any, updated_at: sql`now()` as any })
    .where('job_id', '=', jobId)
    .where('status', '=', 'running')
    .returningAll()
    .executeTakeFirst();
}

/** Queues a failed or cancelled job again with a fresh set of attempts. */
export async function retryJob(db: Db, jobId: string): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set({
      status: 'queued', attempts: 0, run_at: sql`now()` as any, cancel_requested_at: null, finished_at: null,
      started_at: null, result: null, progress: null, updated_at: sql`now()` as any,
    })
    .where('job_id', '=', jobId)
    .where('status', 'in', sourcesOf('queued').filter((s) => s !== 'running'))
    .returningAll()
    .executeTakeFirst();
}

/**
 * Claims the named jobs (queued and due -> running) in one conditional UPDATE: the claim of runners
 * that learn job ids from a broker. A row another runner holds, a finished one or one not yet due is
 * left alone, and its absence from the result tells the caller so. SKIP LOCKED: two claimers of the
 * same id never wait on each other, and one of them gets it.
 */
export async function claimJobsById(db: Db, workerId: string, jobIds: readonly string[], leaseMs: number): Promise<JobRow[]> {
  if (jobIds.length === 0) return [];
  return completeAndClaimJobs(db, workerId, [], jobIds, leaseMs);
}

/**
 * Marks `completions` succeeded (as completeJobs does) and claims `claimIds` (as claimJobsById does)
 * in one statement: one round trip and one commit for a queue worker's status writes of a moment.
 * Returns the claimed rows. The rows are looked up by primary key only and their status checked
 * once locked, so the plan never walks the status index, however many rows are queued.
 */
export async function completeAndClaimJobs(db: Db, workerId: string, completions: readonly Completion[], claimIds: readonly string[], leaseMs: number): Promise<JobRow[]> {
  const ids = completions.map((c) => c.jobId);
  const results = completions.map((c) => (c.result === undefined ? null : JSON.stringify(c.result)));
  const { rows } = await sql<JobRow>`
    WITH done AS (
      UPDATE jobs AS j SET status = 'succeeded', result = v.result::jsonb,
        finished_at = now(), updated_at = now(), locked_by = NULL, lease_expires_at = NULL
      FROM (SELECT unnest(${ids}::uuid[]) AS job_id, unnest(${results}::text[]) AS result) AS v
      WHERE j.job_id = v.job_id AND j.status = 'running' AND j.locked_by = ${workerId}
      RETURNING j.job_id),
    candidates AS MATERIALIZED (
      SELECT job_id, status, run_at <= now() AS due FROM jobs
      WHERE job_id = ANY(${[...claimIds]}::uuid[])
      FOR UPDATE SKIP LOCKED),
    claimed AS (
      UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ${workerId},
        lease_expires_at = now() + ${leaseMs} * INTERVAL '1 millisecond', started_at = now(), updated_at = now()
      FROM candidates AS c
      WHERE jobs.job_id = c.job_id AND c.status = 'queued' AND c.due
      RETURNING jobs.*)
    SELECT * FROM claimed`.execute(db);
  return rows;
}

export interface ClaimState {
  job_id: string;
  status: JobStatus;
  /** Milliseconds until run_at (negative when due), by the database's clock. */
  due_in_ms: number;
  lease_expired: boolean;
}

/** Where the named jobs stand, for a claimer that did not get them; ids with no row are absent. */
export async function claimStates(db: Db, jobIds: readonly string[]): Promise<ClaimState[]> {
  if (jobIds.length === 0) return [];
  const { rows } = await sql<ClaimState>`
    SELECT job_id, status, (extract(epoch FROM run_at - now()) * 1000)::float8 AS due_in_ms,
      coalesce(lease_expires_at < now(), false) AS lease_expired
    FROM jobs WHERE job_id = ANY(${[...jobIds]}::uuid[])`.execute(db);
  return rows.map((r) => ({ ...r, due_in_ms: Number(r.due_in_ms) }));
}

/** What a broker needs to deliver a queued job. */
export interface DispatchableJob {
  job_id: string;
  type: string;
  priority: number;
  run_at: Date;
}

/**
 * Queued jobs a broker should hold: the named ones, or (without ids) up to `limit` of all, highest
 * priority and earliest first, leaving out rows changed in the last `quietMs` (their writer is still
 * dispatching them).
 */
export async function dispatchableJobs(db: Db, opts: { jobIds?: readonly string[]; limit: number; quietMs?: number }): Promise<DispatchableJob[]> {
  const byId = opts.jobIds ? sql`AND job_id = ANY(${[...opts.jobIds]}::uuid[])` : sql``;
  const quiet = opts.quietMs ? sql`AND updated_at < now() - ${opts.quietMs} * INTERVAL '1 millisecond'` : sql``;
  const { rows } = await sql<DispatchableJob>`
    SELECT job_id, type, priority, run_at FROM jobs
    WHERE status = 'queued' ${byId} ${quiet}
    ORDER BY priority DESC, run_at, created_at
    LIMIT ${opts.limit}`.execute(db);
  return rows;
}

/** Queued (due now, due later) and running jobs per type: the table's side of a broker's backlog. */
export async function openJobCountsByType(db: Db): Promise<Array<{ type: string; queued_due: number; queued_later: number; running: number }>> {
  const { rows } = await sql<{ type: string; queued_due: number; queued_later: number; running: number }>`
    SELECT type,
      count(*) FILTER (WHERE status = 'queued' AND run_at <= now())::int AS queued_due,
      count(*) FILTER (WHERE status = 'queued' AND run_at > now())::int AS queued_later,
      count(*) FILTER (WHERE status = 'running')::int AS running
    FROM jobs WHERE status IN ('queued', 'running') GROUP BY type ORDER BY type`.execute(db);
  return rows.map((r) => ({ type: r.type, queued_due: Number(r.queued_due), queued_later: Number(r.queued_later), running: Number(r.running) }));
}

/**
 * Whether the planner's statistics of `jobs` are stale: more rows changed since its last ANALYZE
 * than `baseRows` plus `scale` times the rows counted then. Autovacuum applies the same rule on a
 * PostgreSQL server, minutes later; the embedded database has no autovacuum at all.
 */
export async function jobsStatisticsStale(db: Db, baseRows: number, scale: number): Promise<boolean> {
  const { rows } = await sql<{ changed: number; counted: number }>`
    SELECT s.n_mod_since_analyze::float8 AS changed, greatest(c.reltuples, 0)::float8 AS counted
    FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
    WHERE s.relid = 'jobs'::regclass`.execute(db);
  const row = rows[0];
  return row !== undefined && Number(row.changed) > baseRows + scale * Number(row.counted);
}

/** Refreshes the planner's statistics of `jobs`; skipped when another session is analyzing or vacuuming it. */
export async function analyzeJobs(db: Db): Promise<void> {
  await sql`ANALYZE (SKIP_LOCKED) jobs`.execute(db);
}

/**
 * Sends the wake-up NOTIFY that inserts with `skipNotify` left out, with `payload` (the sender's id,
 * so its own runner can ignore it). Committed without waiting for the WAL flush: it stores nothing.
 */
export async function notifyJobsQueued(db: Db, payload: string): Promise<void> {
  await sql`SELECT set_config('synchronous_commit', 'off', true), pg_notify('evalops_jobs', ${payload})`.execute(db);
}
