import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Kysely } from 'kysely';
import { AppError, conflict, notFound, validation } from '../errors.ts';
import { ACTIVE_RUN_JOB_INDEX } from '../db/migrations/0007-job-ownership.ts';
import { JOB_STATUSES, type Database, type JobRow, type JobStatus } from '../db/schema.ts';
import { parseRfc3339 } from '../config/timestamp.ts';
import type { Metrics } from '../obs/metrics.ts';
import type { Scope } from '../ops/api-key-service.ts';
import type { JobDispatcher } from './dispatch.ts';
import type { HandlerRegistry } from './handler-registry.ts';
import { JobInsertBatcher } from './job-insert-batcher.ts';
import * as store from './job-store.ts';

/** A job as the API shows it. */
export interface Job {
  job_id: string;
  type: string;
  status: JobStatus;
  payload: unknown;
  result: unknown;
  error_message: string | null;
  attempts: number;
  max_attempts: number;
  priority: number;
  run_at: string;
  idempotency_key: string | null;
  cancel_requested_at: string | null;
  locked_by: string | null;
  lease_expires_at: string | null;
  progress: unknown;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

export interface SubmitJobInput {
  type: string;
  payload?: unknown;
  idempotency_key?: string | undefined;
  max_attempts?: number | undefined;
  priority?: number | undefined;
  run_at?: string | undefined;
}

export interface ListJobsInput {
  status?: JobStatus[] | undefined;
  type?: string | undefined;
  since?: Date | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The API shape of a row. */
export function toJob(row: JobRow): Job {
  return {
    job_id: row.job_id,
    type: row.type,
    status: row.status,
    payload: row.payload,
    result: row.result ?? null,
    error_message: row.error_message,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    priority: row.priority,
    run_at: row.run_at.toISOString(),
    idempotency_key: row.idempotency_key,
    cancel_requested_at: iso(row.cancel_requested_at),
    locked_by: row.locked_by,
    lease_expires_at: iso(row.lease_expires_at),
    progress: row.progress ?? null,
    created_at: row.created_at.toISOString(),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
    updated_at: row.updated_at.toISOString(),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The most jobs one batch submit (POST /v1/jobs/batch) carries: they are written by one INSERT in
 * one transaction, and answered in one body. Bulk enqueues send more as several batches.
 */
export const MAX_BATCH_JOBS = 1000;

/** What a stored row or a prepared job says about the request that made it, field by field. */
interface RequestFields {
  type: string;
  payload: unknown;
  max_attempts: number;
  priority: number;
  /** The run_at the request named, in ms since the epoch; null when it named none. */
  run_at: number | null;
}

function storedRequest(row: JobRow): RequestFields {
  return { type: row.type, payload: row.payload, max_attempts: row.max_attempts, priority: row.priority, run_at: row.requested_run_at?.getTime() ?? null };
}

function preparedRequest(job: store.InsertJob): RequestFields {
  return { type: job.type, payload: job.payload, max_attempts: job.maxAttempts, priority: job.priority, run_at: job.runAt?.getTime() ?? null };
}

const shown = (field: keyof RequestFields, value: unknown) =>
  field === 'run_at' ? (value === null ? 'none' : new Date(value as number).toISOString()) : (JSON.stringify(value) ?? 'none').slice(0, 80);

/**
 * The fields in which a repeated idempotency key's request differs from the first one: every field
 * the job stores (type, payload, max_attempts, priority, run_at), so a replay never returns a job
 * other than the one asked for. Empty when the request is the same.
 */
function differences(first: RequestFields, again: RequestFields): string[] {
  return (Object.keys(first) as Array<keyof RequestFields>)
    .filter((field) => !isDeepStrictEqual(first[field], again[field]))
    .map((field) => `${field} ${shown(field, first[field])} there, ${shown(field, again[field])} here`);
}

/** The conflict of a key reused for a different request, naming the fields that differ. */
function keyReused(at: string, key: string, first: string, diff: string[]): AppError {
  return new AppError('CONFLICT', `${at}: "${key}" was already used for a different request (${first}): ${diff.join('; ')}`);
}

/** Whether `err` is the database refusing a second active job of one evaluation run (migration 0007). */
function isSecondRunJob(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown } | null;
  return e?.code === '23505' && (e.constraint === ACTIVE_RUN_JOB_INDEX || String(e.message).includes(ACTIVE_RUN_JOB_INDEX));
}

/** Who submits: the jobs API (the default: internal types refused), or the service owning an internal type. */
export interface SubmitOptions {
  /** The caller owns the internal type it submits (EvaluationService queuing a run's job). */
  internal?: boolean;
}

/** Submits, reads, cancels and retries jobs; the state machine is enforced by the store's conditional updates. */
export class JobService {
  /** Concurrent submits share one INSERT (group commit); a batch submit takes its turn between them. */
  private readonly inserts: JobInsertBatcher;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly registry: HandlerRegistry,
    private readonly metrics: Metrics,
    private readonly limits: {
      payloadLimitBytes: number;
      defaultMaxAttempts: number;
      /** Per-type payload limit and the setting that decided it (runtime limits); payloadLimitBytes when absent. */
      payloadLimitFor?: (type: string) => { limit: number; setting: string };
    },
    /** Hands new and retried rows to whoever runs them: the broker (queue mode), the in-process runner. */
    private readonly dispatcher?: JobDispatcher,
  ) {
    this.inserts = new JobInsertBatcher(db, dispatcher?.localWakeUp);
  }

  /** Validates and stores a queued job; an idempotency key already used returns the first job (`created: false`). */
  async submit(input: SubmitJobInput, options: SubmitOptions = {}): Promise<{ job: Job; created: boolean }> {
    const job = this.prepare(input, '', options);
    const row = await this.inserts.insert(job).catch((err: unknown) => {
      throw isSecondRunJob(err) ? conflict(`payload.run_id: run ${String((job.payload as { run_id?: unknown }).run_id)} already has a queued or running job; a run is executed by one job at a time`) : err;
    });
    if (row) {
      this.metrics.jobsSubmitted.inc({ type: row.type });
      await this.dispatcher?.dispatch([row]);
      return { job: toJob(row), created: true };
    }
    const existing = await store.findJobByIdempotencyKey(this.db, input.idempotency_key!);
    if (!existing) throw conflict(`idempotency_key: "${input.idempotency_key}" is being used by a concurrent request; retry`);
    const diff = differences(storedRequest(existing), preparedRequest(job));
    if (diff.length) throw keyReused('idempotency_key', input.idempotency_key!, `job ${existing.job_id}`, diff);
    return { job: toJob(existing), created: false };
  }

  /**
   * Submits 1 to MAX_BATCH_JOBS jobs as one request. Every job is validated first, then the new ones
   * are stored all or none (one transaction), counted, and handed to the dispatcher in one call.
   * The answer holds each job in request order; a job whose idempotency key was already used, by a
   * stored row or by an earlier job of the batch, is the first job with that key (`created` counts
   * only the new rows), and a different request under a used key is a conflict. Errors name the
   * job's index (`jobs.3.type: ...`); when one is raised, nothing is stored.
   */
  async submitBatch(inputs: readonly SubmitJobInput[]): Promise<{ jobs: Job[]; created: number }> {
    if (inputs.length === 0 || inputs.length > MAX_BATCH_JOBS) {
      throw validation(`jobs: ${inputs.length} jobs; a batch holds 1 to ${MAX_BATCH_JOBS} jobs (MAX_BATCH_JOBS), send more in several batches`, { field: 'jobs', limit: MAX_BATCH_JOBS, size: inputs.length });
    }
    const prepared = inputs.map((input, i) => this.prepare(input, `jobs.${i}.`));
    // Index of the first job of the batch with each key: the only one inserted; a later one repeats its request.
    const firstWithKey = new Map<string, number>();
    const fresh: store.InsertJob[] = [];
    prepared.forEach((job, i) => {
      const key = job.idempotencyKey;
      const first = key === undefined ? undefined : firstWithKey.get(key);
      if (first === undefined) {
        if (key !== undefined) firstWithKey.set(key, i);
        fresh.push(job);
      } else {
        const diff = differences(preparedRequest(prepared[first]!), preparedRequest(job));
        if (diff.length) throw keyReused(`jobs.${i}.idempotency_key`, key!, `jobs.${first}`, diff);
      }
    });
    const { rows, stored } = await this.inserts.insertAtomic(fresh, async (trx, rows) => {
      // The jobs left out had a key a stored row holds: the same request replays that row, another rolls back.
      const inserted = new Set(rows.map((r) => r.job_id));
      const taken = fresh.filter((job) => !inserted.has(job.jobId));
      const stored = new Map((await store.findJobsByIdempotencyKeys(trx, taken.map((job) => job.idempotencyKey!))).map((r) => [r.idempotency_key!, r]));
      for (const job of taken) {
        const key = job.idempotencyKey!;
        const at = `jobs.${firstWithKey.get(key)!}.idempotency_key`;
        const existing = stored.get(key);
        if (!existing) throw conflict(`${at}: "${key}" is being used by a concurrent request; retry`);
        const diff = differences(storedRequest(existing), preparedRequest(job));
        if (diff.length) throw keyReused(at, key, `job ${existing.job_id}`, diff);
      }
      return { rows, stored };
    });
    const byId = new Map(rows.map((r) => [r.job_id, r]));
    const created = prepared.flatMap((job) => byId.get(job.jobId) ?? []);
    const answer = prepared.map((job) => {
      const own = byId.get(job.jobId);
      if (own) return own;
      const key = job.idempotencyKey!;
      return byId.get(prepared[firstWithKey.get(key)!]!.jobId) ?? stored.get(key)!;
    });
    for (const row of created) this.metrics.jobsSubmitted.inc({ type: row.type });
    if (created.length) await this.dispatcher?.dispatch(created);
    return { jobs: answer.map(toJob), created: created.length };
  }

  /**
   * Checks one submit and makes its row: a known type, a payload within its type's size limit that
   * its handler accepts, a parseable run_at. `at` prefixes each field an error names (`jobs.3.` in a
   * batch), so the caller sees which job was refused.
   */
  private prepare(input: SubmitJobInput, at = '', options: SubmitOptions = {}): store.InsertJob {
    const handler = this.registry.get(input.type);
    if (!handler) throw validation(`${at}type: unknown job type "${input.type}"; known types: ${this.registry.publicTypes().join(', ')}`, { field: `${at}type` });
    if (handler.internal && !options.internal) {
      throw validation(`${at}type: jobs of type ${input.type} are created by ${handler.internal.submitVia}, not submitted as jobs; use ${handler.internal.submitVia}`, {
        field: `${at}type`,
        use: handler.internal.submitVia,
      });
    }
    const payload = input.payload ?? {};
    const size = Buffer.byteLength(JSON.stringify(payload));
    const { limit, setting } = this.limits.payloadLimitFor?.(input.type) ?? { limit: this.limits.payloadLimitBytes, setting: 'JOB_PAYLOAD_LIMIT_BYTES' };
    if (size > limit) {
      throw new AppError('PAYLOAD_TOO_LARGE', `${at}payload: ${size} bytes is over the limit of ${limit} bytes for job type ${input.type} (${setting})`, { field: `${at}payload`, limit, size });
    }
    const parsed = handler.payloadSchema.safeParse(payload);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${at}payload${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`);
      throw validation(`invalid payload for job type ${input.type}: ${problems.join('; ')}`, { field: `${at}payload`, problems });
    }
    let runAt: Date | undefined;
    if (input.run_at !== undefined) {
      runAt = parseRfc3339(input.run_at);
      if (!runAt) throw validation(`${at}run_at: "${String(input.run_at).slice(0, 60)}" is not an RFC 3339 date-time with a time zone, such as 2026-12-08T09:30:00Z`, { field: `${at}run_at` });
    }
    return {
      jobId: randomUUID(),
      type: input.type,
      payload,
      maxAttempts: input.max_attempts ?? this.limits.defaultMaxAttempts,
      priority: input.priority ?? 0,
      runAt,
      idempotencyKey: input.idempotency_key,
    };
  }

  async get(jobId: string): Promise<Job> {
    if (!UUID.test(jobId)) throw validation(`id: "${jobId}" is not a job id (a UUID)`, { field: 'id' });
    const row = await store.findJob(this.db, jobId);
    if (!row) throw notFound('job', jobId);
    return toJob(row);
  }

  /** A page of jobs, newest first, and the cursor of the next page (null on the last). */
  async list(input: ListJobsInput): Promise<{ jobs: Job[]; next_cursor: string | null }> {
    const limit = input.limit ?? 50;
    let after: { createdAt: Date; jobId: string } | undefined;
    if (input.cursor) {
      const jobId = Buffer.from(input.cursor, 'base64url').toString('utf8');
      const row = UUID.test(jobId) ? await store.findJob(this.db, jobId) : undefined;
      if (!row) throw validation('cursor: not a cursor returned by this API', { field: 'cursor' });
      after = { createdAt: row.created_at, jobId };
    }
    const rows = await store.listJobs(this.db, { statuses: input.status, type: input.type, since: input.since, after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const next = rows.length > limit ? Buffer.from(page.at(-1)!.job_id, 'utf8').toString('base64url') : null;
    return { jobs: page.map(toJob), next_cursor: next };
  }

  /** Cancels a queued job at once, or asks the runner holding a running one to abort it. */
  async cancel(jobId: string): Promise<Job> {
    await this.get(jobId);
    const row = await store.requestCancel(this.db, jobId);
    if (row?.status === 'cancelled') await this.dispatcher?.withdraw(row);
    if (row) return toJob(row);
    const current = await this.get(jobId);
    throw conflict(`job ${jobId} is already ${current.status}; only queued or running jobs can be cancelled`);
  }

  /** Queues a failed or cancelled job again. */
  async retry(jobId: string): Promise<Job> {
    await this.get(jobId);
    const row = await store.retryJob(this.db, jobId).catch(async (err: unknown) => {
      if (!isSecondRunJob(err)) throw err;
      const current = await store.findJob(this.db, jobId);
      const runId = String((current?.payload as { run_id?: unknown } | undefined)?.run_id);
      const active = await store.findActiveRunJob(this.db, runId);
      throw conflict(`job ${jobId} cannot be retried: run ${runId} already has job ${active?.job_id ?? '(another)'} ${active?.status ?? 'queued or running'}; a run is executed by one job at a time`);
    });
    if (row) {
      this.metrics.jobsSubmitted.inc({ type: row.type });
      await this.dispatcher?.dispatch([row]);
      return toJob(row);
    }
    const current = await this.get(jobId);
    throw conflict(`job ${jobId} is ${current.status}; only failed or cancelled jobs can be retried`);
  }

  /** The runbook's section-B status distribution over jobs created in the last `sinceMs`. */
  async stats(sinceMs: number): Promise<{ since: string; counts: Record<JobStatus, number>; total: number }> {
    const since = new Date(Date.now() - sinceMs);
    const counts = await store.statusCounts(this.db, since);
    return { since: since.toISOString(), counts, total: JOB_STATUSES.reduce((n, s) => n + counts[s], 0) };
  }

  types(): string[] {
    return this.registry.types();
  }

  /** The API key scope that acts on jobs of `type` (cancel, retry): its owner's for an internal type. */
  actScope(type: string): Scope {
    return this.registry.internal(type)?.scope ?? 'jobs:write';
  }
}
