import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database, JobStatus } from '../db/schema.ts';
import type { EvaluationSpec } from './evaluation-spec.ts';

/**
 * The `evaluation_runs` table's SQL, one named function per operation, each taking `db`
 * explicitly. The jobs table stays the record of the job; this row records what the run produced.
 */
type Db = Kysely<Database> | Transaction<Database>;

export interface RunRow {
  run_id: string;
  job_id: string | null;
  status: JobStatus;
  prompt_version: string;
  data_snapshot_id: string;
  provider_type: string;
  model: string;
  mode: 'live' | 'replay';
  seed: number;
  spec: unknown;
  rerun_of: string | null;
  metadata: unknown;
  summary: unknown;
  thresholds_passed: boolean | null;
  run_dir: string | null;
  files: unknown;
  progress: unknown;
  mlflow: unknown;
  error_message: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

export async function insertRun(db: Db, runId: string, spec: EvaluationSpec, rerunOf: string | null): Promise<RunRow> {
  return (await db
    .insertInto('evaluation_runs')
    .values({
      run_id: runId,
      prompt_version: spec.prompt_version,
      data_snapshot_id: spec.data_snapshot_id,
      provider_type: spec.provider.type,
      model: spec.model,
      mode: spec.mode,
      seed: spec.seed,
      spec: JSON.stringify(spec),
      rerun_of: rerunOf,
    })
    .returningAll()
    .executeTakeFirstOrThrow()) as RunRow;
}

export async function attachJob(db: Db, runId: string, jobId: string): Promise<void> {
  await db.updateTable('evaluation_runs').set({ job_id: jobId, updated_at: sql`now()` as any }).where('run_id', '=', runId).execute();
}

export async function deleteRun(db: Db, runId: string): Promise<void> {
  await db.deleteFrom('evaluation_runs').where('run_id', '=', runId).execute();
}

export async function findRun(db: Db, runId: string): Promise<RunRow | undefined> {
  return (await db.selectFrom('evaluation_runs').selectAll().where('run_id', '=', runId).executeTakeFirst()) as RunRow | undefined;
}

/**
 * One run, reconciled with its job (see reconcileRunsWithJobs) in the same round trip when nothing
 * needs changing, which is almost always: polling a run must stay cheap.
 */
export async function findRunReconciled(db: Db, runId: string): Promise<RunRow | undefined> {
  const row = (await db
    .selectFrom('evaluation_runs as r')
    .leftJoin('jobs as j', 'j.job_id', 'r.job_id')
    .selectAll('r')
    .select(['j.status as job_status'])
    .where('r.run_id', '=', runId)
    .executeTakeFirst()) as (RunRow & { job_status: JobStatus | null }) | undefined;
  if (!row) return undefined;
  const { job_status: job, ...run } = row;
  const stale =
    (run.status === 'queued' || run.status === 'running') &&
    (job === 'failed' || job === 'cancelled' || (run.status === 'running' && job === 'queued') || (run.job_id === null && Date.now() - run.created_at.getTime() > 5 * 60_000));
  if (!stale) return run;
  await reconcileRunsWithJobs(db);
  return findRun(db, runId);
}

export interface ListRunsFilter {
  statuses?: JobStatus[] | undefined;
  promptVersion?: string | undefined;
  after?: string | undefined;
  limit: number;
}

/** Newest first; keyset pagination on (created_at, run_id). */
export async function listRuns(db: Db, filter: ListRunsFilter): Promise<RunRow[]> {
  let query = db.selectFrom('evaluation_runs').selectAll().orderBy('created_at', 'desc').orderBy('run_id', 'desc').limit(filter.limit);
  if (filter.statuses?.length) query = query.where('status', 'in', filter.statuses);
  if (filter.promptVersion) query = query.where('prompt_version', '=', filter.promptVersion);
  if (filter.after) {
    query = query.where(sql<boolean>`(created_at, run_id) < (SELECT c.created_at, c.run_id FROM evaluation_runs AS c WHERE c.run_id = ${filter.after})`);
  }
  return (await query.execute()) as RunRow[];
}

/** Marks an attempt started: status running, where its files go, the previous attempt's error cleared. */
export async function markRunStarted(db: Db, runId: string, jobId: string, runDir: string): Promise<void> {
  await db
    .updateTable('evaluation_runs')
    .set({ status: 'running', job_id: jobId, run_dir: runDir, error_message: null, started_at: sql`now()` as any, finished_at: null, updated_at: sql`now()` as any })
    .where('run_id', '=', runId)
    .execute();
}

export async function setRunProgress(db: Db, runId: string, progress: unknown): Promise<void> {
  await db
    .updateTable('evaluation_runs')
    .set({ progress: JSON.stringify(progress), updated_at: sql`now()` as any })
    .where('run_id', '=', runId)
    .where('status', '=', 'running')
    .execute();
}

export interface RunOutcome {
  status: 'succeeded' | 'failed' | 'cancelled' | 'queued' | 'running';
  errorMessage?: string | null;
  metadata?: unknown;
  summary?: unknown;
  files?: unknown;
  thresholdsPassed?: boolean | null;
  mlflow?: unknown;
}

/** Records the outcome of an attempt (finished_at only for final statuses). */
export async function recordRunOutcome(db: Db, runId: string, outcome: RunOutcome): Promise<void> {
  const final = outcome.status === 'succeeded' || outcome.status === 'failed' || outcome.status === 'cancelled';
  const json = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));
  await db
    .updateTable('evaluation_runs')
    .set({
      status: outcome.status,
      ...(outcome.errorMessage !== undefined ? { error_message: outcome.errorMessage } : {}),
      ...(outcome.metadata !== undefined ? { metadata: json(outcome.metadata)! } : {}),
      ...(outcome.summary !== undefined ? { summary: json(outcome.summary)! } : {}),
      ...(outcome.files !== undefined ? { files: json(outcome.files)! } : {}),
      ...(outcome.thresholdsPassed !== undefined ? { thresholds_passed: outcome.thresholdsPassed } : {}),
      ...(outcome.mlflow !== undefined ? { mlflow: json(outcome.mlflow)! } : {}),
      finished_at: final ? (sql`now()` as any) : null,
      updated_at: sql`now()` as any,
    })
    .where('run_id', '=', runId)
    .execute();
}

/** Sets only the error message (an attempt failed and its job will be retried). */
export async function setRunError(db: Db, runId: string, message: string): Promise<void> {
  await db.updateTable('evaluation_runs').set({ error_message: message, updated_at: sql`now()` as any }).where('run_id', '=', runId).execute();
}

/**
 * Brings unfinished runs in line with their jobs, which are the record of the lifecycle: a job that
 * failed, was cancelled or was lost while its handler could not write (crash, cancelled while
 * queued, lease lost on the last attempt) ends its run the same way; a run whose job went back to
 * the queue for another attempt shows `queued`.
 */
export async function reconcileRunsWithJobs(db: Db): Promise<void> {
  await sql`
    UPDATE evaluation_runs AS r SET
      status = j.status,
      error_message = CASE WHEN j.status IN ('failed', 'cancelled') THEN coalesce(j.error_message, r.error_message) ELSE r.error_message END,
      finished_at = CASE WHEN j.status IN ('failed', 'cancelled') THEN coalesce(j.finished_at, now()) ELSE NULL END,
      updated_at = now()
    FROM jobs AS j
    WHERE r.job_id = j.job_id AND r.status IN ('queued', 'running')
      AND (j.status IN ('failed', 'cancelled') OR (r.status = 'running' AND j.status = 'queued'))`.execute(db);
  // A run whose API process stopped between recording it and queuing its job.
  await sql`
    UPDATE evaluation_runs SET status = 'failed', finished_at = now(), updated_at = now(),
      error_message = 'the API stopped before the run''s job was queued; submit the evaluation again'
    WHERE status = 'queued' AND job_id IS NULL AND created_at < now() - INTERVAL '5 minutes'`.execute(db);
}
