/**
 * The error catalogue: every error the service reports on purpose has one of these codes.
 * HTTP status mapping lives here so routes never choose a status by hand.
 */
export const ERROR_CODES = {
  VALIDATION: { status: 400, retryable: false, description: 'the input is invalid; the message names the field' },
  UNAUTHORIZED: { status: 401, retryable: false, description: 'missing or unknown credentials' },
  FORBIDDEN: { status: 403, retryable: false, description: 'the credentials lack a required permission' },
  NOT_FOUND: { status: 404, retryable: false, description: 'no such resource' },
  CONFLICT: { status: 409, retryable: false, description: 'the resource is in a state that forbids the action' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, description: 'the body or a field is over its configured limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, description: 'the body is not in a supported content type' },
  UNPROCESSABLE: { status: 422, retryable: false, description: 'the request is well-formed but asks for something the service will not do (a regex feature the linear-time engine lacks); the message names it' },
  LIMIT_EXCEEDED: { status: 422, retryable: false, description: 'the request is well-formed but over a configured limit (cases per run, concurrent runs)' },
  RATE_LIMITED: { status: 429, retryable: true, description: 'too many requests; retry after the given time' },
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
