import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, ERROR_CODES, type ErrorCode, isUnavailableError } from '../errors.ts';

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; error_id?: string; details?: Record<string, unknown> };
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
        const where = [err.validationContext ?? 'body', ...v.instancePath.split('/').filter(Boolean)].join('.');
        return `${where}: ${v.message}`;
      });
      return reply.status(400).send(body('VALIDATION', problems.join('; '), { problems }));
    }
    // A PostgreSQL data exception (class 22: a value that does not fit its column) is the input's fault.
    if (typeof err.code === 'string' && /^22[0-9A-Z]{3}$/.test(err.code) && typeof (err as { severity?: unknown }).severity === 'string') {
      return reply.status(400).send(body('VALIDATION', `a value in the request cannot be stored: ${err.message}`));
    }
    const status = err.statusCode ?? 500;
    // A static file path that would leave its folder (`/assets/../..`): there is no such file.
    if (status === 403) return reply.status(404).send(body('NOT_FOUND', `no file for ${request.method} ${request.url.split('?')[0]}`));
    if (status >= 400 && status < 500) {
      const code = FASTIFY_CODES[status] ?? 'VALIDATION';
      return reply.status(status).send(body(code, describeClientError(err, request)));
    }
    const unavailable = err instanceof AppError ? err.code === 'UNAVAILABLE' : isUnavailableError(err);
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

/**
 * Errors of Node's HTTP parser, before Fastify sees a request (`clientErrorHandler`): headers or a
 * URL over the parser's limit (431), a request not received in time (408), malformed HTTP such as
 * a body longer than its Content-Length (400). Answered in the documented format, then the socket
 * is closed, as Node and Fastify do: what follows on it cannot be trusted.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let answer: { status: number; code: ErrorCode; message: string };
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    answer = { status: 431, code: 'HEADERS_TOO_LARGE', message: `request: the URL and headers are over the limit of ${http.maxHeaderSize} bytes (Node's --max-http-header-size); send a shorter URL or fewer headers` };
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    answer = { status: 408, code: 'REQUEST_TIMEOUT', message: 'request: not received in full within the server\'s request timeout' };
  } else {
    answer = { status: 400, code: 'VALIDATION', message: `request: not valid HTTP/1.1 (${err.code ?? 'parse error'}${'reason' in err ? `: ${String((err as { reason?: unknown }).reason)}` : ''})` };
  }
  const text = JSON.stringify(body(answer.code, answer.message));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  }
  socket.destroy(err);
}

/**
 * Requests that arrive while the server closes (keep-alive connections, pipelined requests): 503
 * `UNAVAILABLE` in the documented format with its `error_id`, instead of Fastify's own body
 * (`return503OnClosing`, turned off for this). Registered before any route.
 */
export function registerClosingAnswer(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing) return done();
    const errorId = randomUUID();
    request.log.warn({ error_id: errorId, path: request.url.split('?')[0], method: request.method, status: 503 }, 'request refused: the server is shutting down');
    reply.status(503).header('connection', 'close').send(body('UNAVAILABLE', `the server is shutting down; retry on another instance (error_id ${errorId})`, undefined, errorId));
  });
}

function describeClientError(err: FastifyError, request: FastifyRequest): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return `body: ${err.message.replace(/^Body is not valid JSON but content-type is set to 'application\/json'/, 'not valid JSON')}`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `body: larger than the limit of ${(err as FastifyError & { limit?: number }).limit ?? request.routeOptions.bodyLimit} bytes (BODY_LIMIT_BYTES)`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().slice(0, 100);
      return `body: content type ${type ? `"${type}"` : '(none)'} is not supported; send application/json`;
    }
    default:
      return err.message;
  }
}

function body(code: ErrorCode, message: string, details?: Record<string, unknown>, errorId?: string): ErrorBody {
  return { error: { code, message, ...(errorId ? { error_id: errorId } : {}), ...(details ? { details } : {}) } };
}
