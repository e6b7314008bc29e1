import type { z } from 'zod';
import type { Logger } from '../obs/logger.ts';

/** What a running job can see and do besides its payload. */
export interface JobContext {
  readonly jobId: string;
  readonly type: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted on cancellation, timeout, lost lease or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Records progress (any JSON) on the job row; throttled, so call it as often as useful. */
  progress(value: unknown): void;
  readonly log: Logger;
}

/** A job type: `(payload, ctx) => result`, plus how to validate its payload and bound its run. */
export interface JobHandler<P = any, R = unknown> {
  readonly type: string;
  readonly description: string;
  readonly payloadSchema: z.ZodType<P>;
  /** An attempt running longer than this is aborted and counts as failed. @defaultValue 5 minutes */
  readonly timeoutMs?: number;
  run(payload: P, ctx: JobContext): Promise<R>;
}

/** A failure that retrying cannot fix (bad input, missing resource): the job fails at once. */
export class UnrecoverableJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableJobError';
  }
}

export const DEFAULT_JOB_TIMEOUT_MS = 5 * 60_000;

/** The job types this process knows, by type name. */
export class HandlerRegistry {
  private readonly handlers = new Map<string, JobHandler>();

  register(handler: JobHandler): this {
    if (this.handlers.has(handler.type)) throw new Error(`job type ${handler.type} is registered twice`);
    this.handlers.set(handler.type, handler);
    return this;
  }

  get(type: string): JobHandler | undefined {
    return this.handlers.get(type);
  }

  types(): string[] {
    return [...this.handlers.keys()].sort();
  }
}
