import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/config.ts';
import { AppError } from '../errors.ts';
import type { RuntimeLimits } from '../ops/runtime-limits.ts';
import { checkInput } from './input-guard.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure reads a per-route handler here; ours lets the request through. */
    pressureHandler?: () => undefined;
  }
}

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

/** Routes that keep answering under pressure: load balancers, Prometheus and the operator's CLI need them most then. */
const neverShed = (url: string) => url === '/health' || url.startsWith('/health/') || url === '/metrics' || url.startsWith('/local/');

/** JSON bodies are the ones Fastify buffers; dataset uploads stream under their own limit. */
const isJsonBody = (type: string | undefined) => type === undefined || /^application\/(?:[\w.+-]+\+)?json\b/i.test(type);

/**
 * Load shedding, security headers, CORS, the runtime body limit and hostile-input checks, as hooks
 * on the root app. Registered before the routes.
 */
export async function registerSecurity(app: FastifyInstance, deps: SecurityDeps): Promise<void> {
  const { config, limits } = deps;
  const passThrough = () => undefined;
  app.addHook('onRoute', (route) => {
    if (neverShed(route.url)) route.config = { ...(route.config ?? {}), pressureHandler: passThrough };
  });

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

  // One hook for the headers every answer carries (404s and errors included): helmet's, computed
  // once, and the request id (taken from X-Request-Id when well-formed, see app.ts genReqId).
  const securityHeaders = await helmetHeaders();
  const everyAnswer = Object.entries(securityHeaders);
  const liveness = LIVENESS_HEADERS.map((name) => [name, securityHeaders[name]!] as const);
  app.addHook('onRequest', (request, reply, done) => {
    // The raw URL, not the route: reading request.routeOptions builds an object per request.
    for (const [name, value] of request.url === '/health' ? liveness : everyAnswer) reply.header(name, value);
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

  // Callback-style hooks: they run on every request, and skip the promise an async hook costs.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    if (request.method === 'GET' || request.method === 'HEAD' || !isJsonBody(request.headers['content-type'])) return done(null, payload);
    const { limit, setting } = limits.bodyLimit();
    const declaredHeader = request.headers['content-length'];
    const declared = declaredHeader === undefined ? Number.NaN : Number(declaredHeader);
    if (declared > limit) {
      return done(new AppError('PAYLOAD_TOO_LARGE', `body: ${declared} bytes is over the limit of ${limit} bytes (${setting})`, { limit, value: declared }));
    }
    // Without a length (chunked), count as it arrives; Fastify's own check covers BODY_LIMIT_BYTES.
    if (Number.isNaN(declared) && limit < config.bodyLimitBytes) return done(null, payload.pipe(byteCounter(limit, setting)));
    done(null, payload);
  });

  app.addHook('preValidation', (request, _reply, done) => {
    try {
      checkInput('params', request.params);
      checkInput('querystring', request.query);
      if (request.body !== undefined && request.body !== null && typeof request.body === 'object' && typeof (request.body as { pipe?: unknown }).pipe !== 'function') {
        checkInput('body', request.body);
      }
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
}

/**
 * The helmet headers `GET /health` carries: those that protect a JSON answer (OWASP's set for REST
 * APIs: no MIME sniffing, no framing, a CSP, HSTS). The others (referrer, DNS prefetch, opener and
 * cross-origin policies, download and cross-domain options, the XSS auditor) govern what a browser
 * does with a page; a liveness probe's three-word body is never one. Load balancers call it several
 * times a second, and Fastify and Node lower-case, validate and write every header of every answer:
 * those eight were more than half the headers of a /health answer, and a large part of what it cost beyond
 * a bare Fastify answer (bench/health-throughput.ts).
 */
const LIVENESS_HEADERS = ['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options'] as const;

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
    for (const name of LIVENESS_HEADERS) if (!headers[name]) throw new Error(`@fastify/helmet did not set ${name}`);
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
