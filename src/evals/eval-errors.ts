import type { ZodError } from 'zod';
import { AppError, type ErrorCode } from '../errors.ts';

/**
 * Errors of the evals building blocks are `AppError`s of the service catalogue (src/errors.ts), so
 * the HTTP layer and the job runner map them by `code` like any other; `retryable` follows the
 * code (VALIDATION: no, UNAVAILABLE: yes). `problems` lists one sentence per invalid field or row
 * and is also exposed to callers as `details.problems`.
 */
export class EvalError extends AppError {
  readonly problems: readonly string[];

  constructor(code: ErrorCode, message: string, options: { problems?: readonly string[]; cause?: unknown } = {}) {
    super(code, message, options.problems !== undefined && options.problems.length > 0 ? { problems: [...options.problems] } : undefined);
    this.name = new.target.name;
    this.problems = options.problems ?? [];
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/** Invalid configuration or input (never retryable): the message says which field and why. */
export class EvalValidationError extends EvalError {
  constructor(message: string, problems: readonly string[] = [], cause?: unknown) {
    super('VALIDATION', message, { problems, cause });
  }
}

/**
 * Formats zod issues as `path: message` sentences, the path dotted (`messages.1.role`) and put
 * under `prefix` when given (`scorers.1.pattern`).
 */
export function formatZodIssues(error: ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => {
    const path = [...(prefix === '' ? [] : [prefix]), ...issue.path.map((p) => String(p))].join('.');
    return `${path === '' ? '(root)' : path}: ${issue.message}`;
  });
}
