import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type preParsingHookHandler, type preValidationHookHandler } from 'fastify';
import type { Config } from '../config/config.ts';
import { AppError } from '../errors.ts';
import type { RuntimeLimits } from '../ops/runtime-limits.ts';
import { guardRequest, registerUtf8JsonParser } from './input-guard.ts';
import { addRouteHook } from './route-hooks.ts';

/** Seconds a shed request is told to wait. */
const SHED_RETRY_AFTER_S = 5;
/**
 * Event-loop readings taken this soon after the app is built are ignored: start-up itself blocks the
 * loop (PGlite opening its files, migrations), and the first request must not be shed for it.
 */
const STARTUP_GRACE_MS = 5000;

export interface SecurityDeps {
  config: Config;
  limits: RuntimeLimits;
}

/** JSON bodies are the ones Fastify buffers; dataset uploads stream under their own limit. */
const isJsonBody = (type: string | undefined) => type === undefined || /^application\/(?:[\w.+-]+\+)?json\b/i.test(type);

/**
 * Load shedding (@fastify/under-pressure): 503 with Retry-After while the event loop lags or the
 * heap is nearly full. Registered in the context of the routes it may shed: the ones that keep
 * answering under pressure (health, /metrics, the CLI's /local routes: load balancers, Prometheus
 * and the operator need them most then) live outside it and never run its hook.
 */
export async function registerLoadShedding(app: FastifyInstance, config: Config): Promise<void> {
  const heapLimit = getHeapStatistics().heap_size_limit;
  const builtAt = Date.now();
  const { eventLoopDelayMs, heapPercent } = config.loadShedding;
  await app.register(underPressure, {
    maxEventLoopDelay: eventLoopDelayMs,
    maxHeapUsedBytes: heapPercent > 0 ? Math.floor((heapLimit * heapPercent) / 100) : 0,
    sampleInterval: 1000,
    retryAfter: SHED_RETRY_AFTER_S,
    // The plugin sends what the handler returns (index.js handlePressure); its types only admit void.
    pressureHandler: ((request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      // Let through: start-up lag, and a second in which the loop did not turn at all (the plugin then
      // reads Infinity): one long block that is over by now, not sustained load, which reads finite.
      if (type === 'eventLoopDelay' && (!Number.isFinite(value) || Date.now() - builtAt < STARTUP_GRACE_MS)) return undefined;
      const what =
        type === 'eventLoopDelay'
          ? `event loop delay ${Math.round(value ?? 0)} ms over ${eventLoopDelayMs} ms (LOAD_SHED_EVENT_LOOP_DELAY_MS)`
          : `heap ${Math.round((value ?? 0) / 1024 / 1024)} MiB over ${heapPercent}% of its limit (LOAD_SHED_HEAP_PERCENT)`;
      const errorId = randomUUID();
      // A 5xx: one log line with its error_id, as for every 5xx (no stack: nothing is broken).
      request.log.warn({ error_id: errorId, path: request.url.split('?')[0], method: request.method, status: 503, shed: type }, 'request shed under load');
      reply.code(503).header('retry-after', SHED_RETRY_AFTER_S);
      return { error: { code: 'UNAVAILABLE', message: `the server is overloaded (${what}); retry after ${SHED_RETRY_AFTER_S} s (error_id ${errorId})`, error_id: errorId } };
    }) as unknown as (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void,
  });
}

/**
 * Security headers, CORS, the runtime body limit and hostile-input checks. Registered on the root
 * app before the routes.
 */
export async function registerSecurity(app: FastifyInstance, deps: SecurityDeps): Promise<void> {
  const { config, limits } = deps;
  // One hook for the headers every answer carries (404s and errors included): helmet's, computed
  // once, and the request id (taken from X-Request-Id when well-formed, see app.ts genReqId).
  const securityHeaders = await helmetHeaders();
  const everyAnswer = Object.entries(securityHeaders);
  app.addHook('onRequest', (request, reply, done) => {
    // The raw URL, not the route: reading request.routeOptions builds an object per request.
    for (const [name, value] of request.url === '/health' ? LIVENESS_HEADERS : everyAnswer) reply.header(name, value);
    reply.header('x-request-id', request.id);
    done();
  });
  if (config.access.corsOrigins) {
    const origins = config.access.corsOrigins;
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
      maxAge: 600,
    });
  }

  // Given to the routes that take input when they are registered (callback style: no promise per
  // request): the body limit to the routes that accept a body, the input checks to the routes with
  // path parameters, a query schema or a body. A route reads its input only through its schema; the
  // others (health, /metrics, the dashboard's pages) run neither.
  const bodyLimit: preParsingHookHandler = (request, _reply, payload, done) => {
    if (!isJsonBody(request.headers['content-type'])) return done(null, payload);
    const { limit, setting } = limits.bodyLimit();
    const declaredHeader = request.headers['content-length'];
    const declared = declaredHeader === undefined ? Number.NaN : Number(declaredHeader);
    if (declared > limit) {
      return done(new AppError('PAYLOAD_TOO_LARGE', `body: ${declared} bytes is over the limit of ${limit} bytes (${setting})`, { limit, value: declared }));
    }
    // Without a length (chunked), count as it arrives; Fastify's own check covers BODY_LIMIT_BYTES.
    if (Number.isNaN(declared) && limit < config.bodyLimitBytes) return done(null, payload.pipe(byteCounter(limit, setting)));
    done(null, payload);
  };
  const inputGuard: preValidationHookHandler = (request, _reply, done) => {
    try {
      guardRequest(request);
    } catch (err) {
      return done(err as Error);
    }
    done();
  };
  registerUtf8JsonParser(app);
  app.addHook('onRoute', (route) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => String(m).toUpperCase());
    const takesBody = methods.some((m) => m !== 'GET' && m !== 'HEAD');
    if (takesBody) addRouteHook(route, 'preParsing', bodyLimit);
    if (takesBody || /[:*]/.test(route.url) || route.schema?.querystring !== undefined) addRouteHook(route, 'preValidation', inputGuard);
  });
}

/**
 * The security headers of `GET /health`, what load balancers call several times a second each:
 * the two that mean something for a JSON answer. `nosniff`, and the CSP OWASP gives REST answers
 * (`default-src 'none'`: the body loads nothing) with `frame-ancestors 'self'`, which supersedes
 * X-Frame-Options in every browser that honours either. HSTS is left to the other answers: a
 * browser learns it from any answer of the host, and no browser visits a liveness probe. Helmet's
 * page headers (referrer, opener and cross-origin policies, download options...) govern what a
 * browser does with a page, which a 15-byte probe answer never is. Fastify and Node lower-case,
 * validate and write every header of every answer (and the caller parses them): helmet's full set
 * made up most of what a /health answer cost beyond a bare Fastify hello world
 * (bench/health-throughput.ts).
 */
const LIVENESS_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['content-security-policy', "default-src 'none'; frame-ancestors 'self'"],
  ['x-content-type-options', 'nosniff'],
];

/**
 * Helmet's options: its defaults, except `upgrade-insecure-requests`, which would make browsers fetch
 * /docs' scripts over https from a server that speaks plain http (the default, on loopback).
 */
const HELMET_OPTIONS = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } };

/**
 * The headers @fastify/helmet sets, computed once. The plugin builds its middleware anew for every
 * request (about 30 us of CPU each, a third of a /health answer); our headers are the same for
 * every route (no CSP nonces), so we ask the plugin once, on a scratch app, and set its answer.
 */
async function helmetHeaders(): Promise<Record<string, string>> {
  const scratch = Fastify({ logger: false });
  const bare = Fastify({ logger: false });
  try {
    await scratch.register(helmet, HELMET_OPTIONS);
    scratch.get('/', async () => 'ok');
    bare.get('/', async () => 'ok');
    const [withHelmet, plain] = [await scratch.inject({ method: 'GET', url: '/' }), await bare.inject({ method: 'GET', url: '/' })];
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(withHelmet.headers)) {
      if (!(name in plain.headers) && typeof value === 'string') headers[name] = value;
    }
    return headers;
  } finally {
    await Promise.all([scratch.close(), bare.close()]);
  }
}

function byteCounter(limit: number, setting: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) return done(new AppError('PAYLOAD_TOO_LARGE', `body: more than ${limit} bytes (at least ${seen}), over the limit of ${limit} bytes (${setting})`, { limit, value: seen }));
      done(null, chunk);
    },
  });
}
