import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.ts';

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; error_id?: string; details?: Record<string, unknown> };
}

// Connection-level failures of the database or Redis: the service is unavailable, not broken.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

function isUnavailable(err: FastifyError): boolean {
  return UNAVAILABLE_CODES.has(String(err.code)) || /timeout exceeded when trying to connect|Connection terminated|did not answer within/i.test(err.message);
}

const FASTIFY_CODES: Record<number, ErrorCode> = { 400: 'VALIDATION', 404: 'NOT_FOUND', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 429: 'RATE_LIMITED' };

/** Maps every error to the catalogue, one place for the whole API. 5xx answers get an error_id logged once. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError && err.status < 500) {
      return reply.status(err.status).send(body(err.code, err.message, err.details));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const problems = err.validation.map((v) => {
        const where = `${err.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`;
        return `${where}: ${v.message}`;
      });
      return reply.status(400).send(body('VALIDATION', problems.join('; '), { problems }));
    }
    // A PostgreSQL data exception (class 22: a value that does not fit its column) is the input's fault.
    if (typeof err.code === 'string' && /^22[0-9A-Z]{3}$/.test(err.code) && typeof (err as { severity?: unknown }).severity === 'string') {
      return reply.status(400).send(body('VALIDATION', `a value in the request cannot be stored: ${err.message}`));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = FASTIFY_CODES[status] ?? 'VALIDATION';
      return reply.status(status).send(body(code, describeClientError(err)));
    }
    const unavailable = err instanceof AppError ? err.code === 'UNAVAILABLE' : isUnavailable(err);
    const code: ErrorCode = err instanceof AppError ? err.code : unavailable ? 'UNAVAILABLE' : 'INTERNAL';
    const errorId = randomUUID();
    const httpStatus = ERROR_CODES[code].status;
    request.log.error({ error_id: errorId, path: request.url.split('?')[0], method: request.method, status: httpStatus, err }, 'request failed');
    // An AppError's message is written for the caller (it names a setting to fix, never a secret).
    const message = err instanceof AppError ? err.message : code === 'UNAVAILABLE' ? 'a dependency is unavailable; see /health/detailed' : 'internal error';
    return reply.status(httpStatus).send(body(code, `${message} (error_id ${errorId})`, undefined, errorId));
  });
}

/**
 * URLs no route matched: 404 JSON. The handler lives in a context of its own whose hooks run for
 * those requests alone (Fastify gives a not-found handler the hooks of the context that sets it):
 * the API's access check (any valid key, counted against the caller's budget) and the request
 * observer's count of unmatched requests. The routes run neither.
 */
export async function registerNotFound(app: FastifyInstance, hooks: { onRequest: onRequestHookHandler; onResponse: onResponseHookHandler }): Promise<void> {
  await app.register(async (unmatched) => {
    unmatched.addHook('onRequest', hooks.onRequest);
    unmatched.addHook('onResponse', hooks.onResponse);
    unmatched.setNotFoundHandler((request, reply) => {
      reply.status(404).send(body('NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`));
    });
  });
}

/** Errors Fastify answers before routing (a malformed URL): the same body as every other error. */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  reply.status(status).send(body(FASTIFY_CODES[status] ?? 'VALIDATION', `url: ${err.code === 'FST_ERR_BAD_URL' ? 'not a valid URL (malformed percent-encoding)' : err.message}`));
}

function describeClientError(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return `body: ${err.message.replace(/^Body is not valid JSON but content-type is set to 'application\/json'/, 'not valid JSON')}`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `body: larger than the limit of ${(err as FastifyError & { limit?: number }).limit ?? 'BODY_LIMIT_BYTES'} bytes (BODY_LIMIT_BYTES)`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `body: content type not supported; send application/json`;
    default:
      return err.message;
  }
}

function body(code: ErrorCode, message: string, details?: Record<string, unknown>, errorId?: string): ErrorBody {
  return { error: { code, message, ...(errorId ? { error_id: errorId } : {}), ...(details ? { details } : {}) } };
}
