/**
 * The error catalogue: every error the service reports on purpose has one of these codes.
 * HTTP status mapping lives here so routes never choose a status by hand.
 */
export const ERROR_CODES = {
  VALIDATION: { status: 400, retryable: false, description: 'the input is invalid; the message names the field' },
  UNAUTHORIZED: { status: 401, retryable: false, description: 'missing or unknown credentials' },
  FORBIDDEN: { status: 403, retryable: false, description: 'the credentials lack a required permission' },
  NOT_FOUND: { status: 404, retryable: false, description: 'no such resource' },
  REQUEST_TIMEOUT: { status: 408, retryable: true, description: "the request was not received in full within Node's request timeout (5 minutes)" },
  CONFLICT: { status: 409, retryable: false, description: 'the resource is in a state that forbids the action' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, description: 'the body or a field is over its configured limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, description: 'the body is not in a supported content type' },
  NOT_ALLOWED: { status: 422, retryable: false, description: "the request names an environment variable or host the operator's settings do not let providers use" },
  UNPROCESSABLE: { status: 422, retryable: false, description: 'the request is well-formed but asks for something the service will not do (a regex feature the linear-time engine lacks); the message names it' },
  LIMIT_EXCEEDED: { status: 422, retryable: false, description: 'the request is well-formed but over a configured limit (cases per run, concurrent runs)' },
  RATE_LIMITED: { status: 429, retryable: true, description: 'too many requests; retry after the given time' },
  HEADERS_TOO_LARGE: { status: 431, retryable: false, description: 'the request line and headers are over the limit of the HTTP parser' },
  INTERNAL: { status: 500, retryable: true, description: 'an unexpected failure; the error_id finds its log line' },
  UNAVAILABLE: { status: 503, retryable: true, description: 'a dependency (database, Redis) is unavailable' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure with a stable code; `details` is safe to show to the caller. */
export class AppError extends Error {
  readonly status: number;
  readonly retryable: boolean;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
  }
}

export const notFound = (what: string, id: string) => new AppError('NOT_FOUND', `${what} ${id} does not exist`);
export const validation = (message: string, details?: Record<string, unknown>) => new AppError('VALIDATION', message, details);
export const conflict = (message: string) => new AppError('CONFLICT', message);
export const unavailable = (message: string) => new AppError('UNAVAILABLE', message);

/**
 * Operating-system errors that retrying the same job cannot fix: the file system refuses the path
 * itself (permissions, a read-only mount, a file where a folder belongs), and only an operator's
 * change of configuration helps. Retrying hid the cause behind minutes of backoff. Errors of a
 * level that moves on its own stay retryable: ENOSPC and EDQUOT (other runs finish and remove
 * their temporary files, an operator frees space; each attempt starts by removing its own leftovers
 * and resumes from the recorded answers, so a retry costs little), EMFILE and ENFILE (descriptors
 * free up as other work ends), and network errors.
 */
export const PERMANENT_SYSTEM_ERRORS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a path component is not a folder',
  EISDIR: 'a folder where a file was expected',
  ENAMETOOLONG: 'path too long',
  ELOOP: 'too many symbolic links',
};

/**
 * Whether a failure may succeed when tried again: an AppError says so by its code (VALIDATION: no,
 * UNAVAILABLE: yes), a system error by PERMANENT_SYSTEM_ERRORS; anything else is retryable. The
 * cause of a wrapped error decides when the wrapper says nothing.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof AppError) return err.retryable;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in PERMANENT_SYSTEM_ERRORS) return false;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause === undefined || cause === err ? true : isRetryable(cause);
}

// Connection-level failures of the database or Redis (a transaction's ROLLBACK on a connection
// already lost says "is not queryable"), and statements the database cancelled for taking too long
// (57014, statement_timeout): the service is unavailable, not broken.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57014', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

/** Whether a driver error (pg, ioredis, a bounded wait) means a dependency is unavailable: a 503, not a 500. */
export function isUnavailableError(err: { code?: unknown; message: string }): boolean {
  return UNAVAILABLE_CODES.has(String(err.code)) || /timeout exceeded when trying to connect|Connection terminated|did not answer within|is not queryable|Command timed out|Stream isn't writeable/i.test(err.message);
}
