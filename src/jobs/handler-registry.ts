import type { z } from 'zod';
import type { Logger } from '../obs/logger.ts';
import type { Scope } from '../ops/api-key-service.ts';

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
  /**
   * Set for a type the service queues itself as part of a resource it owns (an evaluation run):
   * POST /v1/jobs refuses it, naming `submitVia`, and acting on such a job (cancel, retry) needs
   * `scope`, the scope that acts on the resource. Left unset: a public type, acted on with `jobs:write`.
   */
  readonly internal?: InternalJobType;
  run(payload: P, ctx: JobContext): Promise<R>;
}

/** How a job type owned by a resource is reached from outside (see JobHandler.internal). */
export interface InternalJobType {
  /** The route that creates such jobs, named in the refusal: `POST /v1/evaluations`. */
  readonly submitVia: string;
  /** The API key scope that acts on the resource, and so on its jobs: `evals:write`. */
  readonly scope: Scope;
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

  /** The types any caller may submit through the jobs API (those not marked internal). */
  publicTypes(): string[] {
    return this.types().filter((type) => !this.handlers.get(type)!.internal);
  }

  /** How an internal type is reached, or undefined for a public (or unknown) type. */
  internal(type: string): InternalJobType | undefined {
    return this.handlers.get(type)?.internal;
  }
}
