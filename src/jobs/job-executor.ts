import type { Kysely } from 'kysely';
import type { Database, JobRow } from '../db/schema.ts';
import type { Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import { DEFAULT_JOB_TIMEOUT_MS, type HandlerRegistry, UnrecoverableJobError } from './handler-registry.ts';
import { retryDelayMs } from './job-state.ts';
import { type Completion, completeJobs, finishJob, requeueJob, setProgress } from './job-store.ts';

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
   * How batched completions reach the table. @defaultValue completeJobs. Queue workers pass a writer
   * that shares one statement with their claims.
   */
  writeCompletions?: (batch: Completion[]) => Promise<unknown>;
}

const PROGRESS_INTERVAL_MS = 500;

/**
 * Runs claimed jobs through their handlers and records the outcome on the row. Shared by every
 * runner: how a job gets claimed differs between runners, what happens to it once held does not.
 */
export class JobExecutor {
  private readonly active = new Map<string, AbortController>();
  private readonly completions = new CompletionBatcher((batch) => (this.options.writeCompletions ?? ((b) => completeJobs(this.options.db, this.options.workerId, b)))(batch));

  constructor(private readonly options: ExecutorOptions) {}

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

  /** Runs one held job to its recorded outcome, and says which; never throws. */
  async execute(job: JobRow): Promise<ExecutionOutcome> {
    const { db, workerId, registry, metrics } = this.options;
    const log = this.options.logger.child({ job_id: job.job_id, type: job.type, attempt: job.attempts });
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
      progress = new ProgressWriter((value) => setProgress(db, workerId, job.job_id, value), log);
      log.debug('job started');
      const payload = handler.payloadSchema.parse(job.payload);
      const result = await handler.run(payload, { jobId: job.job_id, type: job.type, attempt: job.attempts, signal: controller.signal, progress: (v) => progress!.set(v), log });
      await progress.flush();
      await this.completions.add({ jobId: job.job_id, result: result ?? null });
      outcome = 'succeeded';
      log.debug('job succeeded');
    } catch (caught) {
      await progress?.flush();
      const reason = controller.signal.aborted ? controller.signal.reason : caught;
      outcome = await this.recordFailure(job, reason instanceof Error ? reason : new Error(String(reason)), caught, log);
    } finally {
      clearTimeout(timer);
      this.active.delete(job.job_id);
      const seconds = (performance.now() - started) / 1000;
      metrics.jobDuration.observe({ type: job.type, status: outcome }, seconds);
      if (outcome === 'succeeded' || outcome === 'failed' || outcome === 'cancelled') metrics.jobsFinished.inc({ type: job.type, status: outcome });
    }
    return outcome;
  }

  private async recordFailure(job: JobRow, reason: Error, caught: unknown, log: Logger): Promise<Exclude<ExecutionOutcome, 'succeeded'>> {
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
      const final = caught instanceof UnrecoverableJobError || isValidationError(caught) || job.attempts >= job.max_attempts;
      const errorMessage = `attempt ${job.attempts} of ${job.max_attempts}: ${message}`;
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

  /** Waits for pending batched writes. */
  async flush(): Promise<void> {
    await this.completions.drain();
  }
}

function isValidationError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ZodError';
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
