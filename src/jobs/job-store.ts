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

/** Inserts a queued job; with an idempotency key already used, inserts nothing and returns undefined. */
export async function insertJob(db: Db, job: InsertJob): Promise<JobRow | undefined> {
  return db
    .insertInto('jobs')
    .values({
      job_id: job.jobId,
      type: job.type,
      payload: JSON.stringify(job.payload ?? {}),
      max_attempts: job.maxAttempts,
      priority: job.priority,
      ...(job.runAt ? { run_at: job.runAt } : {}),
      idempotency_key: job.idempotencyKey ?? null,
    })
    .onConflict((oc) => oc.column('idempotency_key').where('idempotency_key', 'is not', null).doNothing())
    .returningAll()
    .executeTakeFirst();
}

export function findJob(db: Db, jobId: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
}

export function findJobByIdempotencyKey(db: Db, key: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('idempotency_key', '=', key).executeTakeFirst();
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
  const typeFilter = types?.length ? sql`AND type = ANY(${[...types]}::text[])` : sql``;
  const { rows } = await sql<JobRow>`
    UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ${workerId},
      lease_expires_at = now() + ${leaseMs} * INTERVAL '1 millisecond', started_at = now(), updated_at = now()
    WHERE job_id IN (
      SELECT job_id FROM jobs
      WHERE status = 'queued' AND run_at <= now() ${typeFilter}
      ORDER BY priority DESC, run_at, created_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING *`.execute(db);
  return rows.sort((a, b) => b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime());
}

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
