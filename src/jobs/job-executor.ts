import type { Kysely } from 'kysely';
import type { Database, JobRow } from '../db/schema.ts';
import { isRetryable, PERMANENT_SYSTEM_ERRORS } from '../errors.ts';
import type { Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import { DEFAULT_JOB_TIMEOUT_MS, type HandlerRegistry, UnrecoverableJobError } from './handler-registry.ts';
import { retryDelayMs } from './job-state.ts';
import { type Completion, completeJobs, finishJob, renewLeases, requeueJob, setProgress } from './job-store.ts';

/** What the executor reads of a held job's row: a runner may claim these columns only. */
export type HeldJob = Pick<JobRow, 'job_id' | 'type' | 'payload' | 'attempts' | 'max_attempts' | 'cancel_requested_at' | 'error_message'>;

/** Why a running job's signal was aborted. */
export type AbortKind = 'cancelled' | 'timeout' | 'lease-lost' | 'shutdown';

/** What became of one held job: its row's new status, or `lost` when the row was left to lease recovery. */
export type ExecutionOutcome = 'succeeded' | 'failed' | 'cancelled' | 'retry' | 'handed-back' | 'lost';

export class JobAbortedError extends Error {
  constructor(
    readonly kind: AbortKind,
    message: string,
  ) {
    super(message);
    this.name = 'JobAbortedError';
  }
}

export interface ExecutorOptions {
  db: Kysely<Database>;
  workerId: string;
  registry: HandlerRegistry;
  logger: Logger;
  metrics: Metrics;
  retryBaseMs: number;
  retryMaxMs: number;
  /**
   * How one success reaches the table; resolves once it is stored. @defaultValue the successes of
   * one turn of the event loop in one completeJobs statement. Queue workers pass a writer that
   * batches them with their claims.
   */
  storeCompletion?: (completion: Completion) => Promise<void>;
}

/** Calls `execute` makes to its caller while the job is held. */
export interface ExecuteHooks {
  /**
   * The handler succeeded and its success is on its way to the table (the row is still `running`
   * and this executor still renews its lease): a runner may let go of its delivery now rather than
   * one statement later. `execute` still resolves only once the outcome is stored, and says which
   * it was (a failed write ends as `lost` or `retry`, like any other failure to record).
   */
  onSucceeded?: () => void;
}

const PROGRESS_INTERVAL_MS = 500;

/**
 * Runs claimed jobs through their handlers and records the outcome on the row. Shared by every
 * runner: how a job gets claimed differs between runners, what happens to it once held does not.
 */
export class JobExecutor {
  private readonly active = new Map<string, AbortController>();
  private readonly batcher: CompletionBatcher | undefined;
  private readonly storeCompletion: (completion: Completion) => Promise<void>;
  /** Successes on their way to the table, for `flush`. */
  private readonly storing = new Set<Promise<void>>();

  constructor(private readonly options: ExecutorOptions) {
    if (options.storeCompletion) {
      this.storeCompletion = options.storeCompletion;
    } else {
      const batcher = new CompletionBatcher((batch) => completeJobs(options.db, options.workerId, batch));
      this.batcher = batcher;
      this.storeCompletion = (completion) => batcher.add(completion);
    }
  }

  get activeCount(): number {
    return this.active.size;
  }

  activeIds(): string[] {
    return [...this.active.keys()];
  }

  /** Aborts a job this executor holds; false when it holds no such job. */
  abort(jobId: string, kind: AbortKind, message: string): boolean {
    const controller = this.active.get(jobId);
    if (!controller || controller.signal.aborted) return false;
    controller.abort(new JobAbortedError(kind, message));
    return true;
  }

  abortAll(kind: AbortKind, message: string): void {
    for (const id of this.active.keys()) this.abort(id, kind, message);
  }

  /**
   * Extends the leases of every job held here by `leaseMs`, in one statement, and aborts the jobs
   * whose row says otherwise: taken back by lease recovery (`lease-lost`), or asked to cancel (the
   * fallback should the cancel notification be lost). Runners call it every third of the lease.
   */
  async renewHeldLeases(leaseMs: number): Promise<void> {
    const held = this.activeIds();
    if (held.length === 0) return;
    const renewed = await renewLeases(this.options.db, this.options.workerId, held, leaseMs);
    const still = new Map(renewed.map((r) => [r.job_id, r.cancel_requested_at]));
    for (const id of held) {
      if (!still.has(id)) this.abort(id, 'lease-lost', 'lease expired and was taken back');
      else if (still.get(id)) this.abort(id, 'cancelled', 'cancel requested');
    }
  }

  /** Runs one held job to its recorded outcome, and says which; never throws. */
  async execute(job: HeldJob, hooks: ExecuteHooks = {}): Promise<ExecutionOutcome> {
    const { db, workerId, registry, metrics, logger } = this.options;
    // The job's child logger and progress writer are made on first use: most jobs of a busy queue
    // never log or report progress, and both showed in a worker's time per job.
    let jobLog: Logger | undefined;
    const log = () => (jobLog ??= logger.child({ job_id: job.job_id, type: job.type, attempt: job.attempts }));
    const debug = logger.isLevelEnabled('debug');
    const controller = new AbortController();
    this.active.set(job.job_id, controller);
    const handler = registry.get(job.type);
    const timeoutMs = handler?.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    const timer = setTimeout(() => this.abort(job.job_id, 'timeout', `timed out after ${timeoutMs} ms`), timeoutMs);
    const started = performance.now();
    let progress: ProgressWriter | undefined;
    let outcome: ExecutionOutcome = 'failed';
    try {
      if (!handler) throw new UnrecoverableJobError(`no handler for job type ${job.type} in this process (known: ${registry.types().join(', ')})`);
      if (job.cancel_requested_at) throw new JobAbortedError('cancelled', 'cancelled before it started');
      if (debug) log().debug('job started');
      const payload = handler.payloadSchema.parse(job.payload);
      const result = await handler.run(payload, {
        jobId: job.job_id,
        type: job.type,
        attempt: job.attempts,
        signal: controller.signal,
        progress: (value) => (progress ??= new ProgressWriter((v) => setProgress(db, workerId, job.job_id, v), log())).set(value),
        get log() {
          return log();
        },
      });
      await progress?.flush();
      const completion = { jobId: job.job_id, result: result ?? null };
      const stored = this.storeCompletion(completion).catch(async (err: unknown) => {
        // A batch the database refused for its data: maybe this job's result, maybe another's.
        // Alone, this success is stored, or fails as this job's own.
        if (!isDataError(err)) throw err;
        await completeJobs(db, workerId, [completion]);
      });
      this.storing.add(stored);
      try {
        hooks.onSucceeded?.();
        await stored;
      } finally {
        this.storing.delete(stored);
      }
      outcome = 'succeeded';
      if (debug) log().debug('job succeeded');
    } catch (caught) {
      await progress?.flush();
      const reason = controller.signal.aborted ? controller.signal.reason : caught;
      outcome = await this.recordFailure(job, reason instanceof Error ? reason : new Error(String(reason)), caught, log());
    } finally {
      clearTimeout(timer);
      this.active.delete(job.job_id);
      const seconds = (performance.now() - started) / 1000;
      metrics.jobDuration.observe({ type: job.type, status: outcome }, seconds);
      if (outcome === 'succeeded' || outcome === 'failed' || outcome === 'cancelled') metrics.jobsFinished.inc({ type: job.type, status: outcome });
    }
    return outcome;
  }

  private async recordFailure(job: HeldJob, reason: Error, caught: unknown, log: Logger): Promise<Exclude<ExecutionOutcome, 'succeeded'>> {
    const { db, workerId } = this.options;
    const kind = reason instanceof JobAbortedError ? reason.kind : undefined;
    try {
      if (kind === 'lease-lost') {
        log.warn('job abandoned: its lease was taken back by another runner');
        return 'lost';
      }
      if (kind === 'shutdown') {
        await requeueJob(db, workerId, job.job_id, { runAt: new Date(), errorMessage: job.error_message, refundAttempt: true });
        log.info('job handed back to the queue at shutdown');
        return 'handed-back';
      }
      if (kind === 'cancelled') {
        await finishJob(db, workerId, job.job_id, 'cancelled', `cancelled: ${reason.message}`);
        log.info('job cancelled');
        return 'cancelled';
      }
      const message = kind === 'timeout' ? reason.message : (caught instanceof Error ? caught.message : String(caught)) || 'failed without a message';
      // A permanent error (the catalogue's retryable flag, a refused path) fails at once: retrying it only hid the cause.
      const permanent = kind !== 'timeout' && (caught instanceof UnrecoverableJobError || isValidationError(caught) || !isRetryable(caught));
      const final = permanent || job.attempts >= job.max_attempts;
      const code = (caught as { code?: unknown } | null)?.code;
      const why = typeof code === 'string' && code in PERMANENT_SYSTEM_ERRORS ? ` (not retried: ${code}, ${PERMANENT_SYSTEM_ERRORS[code]}, needs a change on the host)` : '';
      const errorMessage = `attempt ${job.attempts} of ${job.max_attempts}: ${message}${why}`;
      if (final) {
        await finishJob(db, workerId, job.job_id, 'failed', errorMessage);
        log.error({ err: caught }, 'job failed');
        return 'failed';
      }
      const delay = retryDelayMs(job.attempts, this.options.retryBaseMs, this.options.retryMaxMs);
      await requeueJob(db, workerId, job.job_id, { runAt: new Date(Date.now() + delay), errorMessage, refundAttempt: false });
      log.warn({ err: caught, retry_in_ms: delay }, 'job attempt failed; will retry');
      return 'retry';
    } catch (err) {
      // The row keeps its lease until it expires; recovery takes it back then.
      log.error({ err }, 'could not record the outcome of a job');
      return 'lost';
    }
  }

  /** Waits for the successes on their way to the table. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.storing]);
    await this.batcher?.drain();
  }
}

function isValidationError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ZodError';
}

/**
 * Whether the database refused a statement for its data (SQLSTATE class 22, such as a result jsonb
 * cannot hold, or 54, a value too large) rather than failing to run it. A batched success refused so
 * is written again alone, so one job's bad result does not fail the others of its batch.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Groups completions that arrive in the same turn of the event loop into one UPDATE; callers
 * await their own write, so a job's slot frees only once its success is on disk.
 */
class CompletionBatcher {
  private pending: Array<{ completion: Completion; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly write: (batch: Completion[]) => Promise<unknown>) {}

  add(completion: Completion): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ completion, resolve, reject });
      if (!this.flushing) this.flushing = new Promise((r) => setImmediate(r)).then(() => this.flushLoop());
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, 500);
      try {
        await this.write(batch.map((b) => b.completion));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = undefined;
  }

  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}

/** Keeps the latest progress value and writes it at most every PROGRESS_INTERVAL_MS. */
class ProgressWriter {
  private latest: { value: unknown } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly write: (value: unknown) => Promise<void>,
    private readonly log: Logger,
  ) {}

  set(value: unknown): void {
    this.latest = { value };
    this.timer ??= setTimeout(() => void this.flush(), PROGRESS_INTERVAL_MS);
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const latest = this.latest;
    this.latest = undefined;
    if (latest) this.writing = this.writing.then(() => this.write(latest.value)).catch((err) => this.log.warn({ err }, 'could not record job progress'));
    await this.writing;
  }
}
