import { timingSafeEqual } from 'node:crypto';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import { isLoopbackHost } from '../config/loopback-host.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../obs/logger.ts';
import { auditLog } from '../ops/access-admin.ts';
import { type AuthenticatedKey, hasScope, type Scope } from '../ops/api-key-service.ts';
import type { RuntimeLimits } from '../ops/runtime-limits.ts';
import type { ApiKeyCache } from './api-key-cache.ts';
import { DASHBOARD_ASSETS_PREFIX, DASHBOARD_PAGES } from '../web/pages.ts';
import { redisRateLimitStore } from './rate-limit-store.ts';
import { addRouteHook } from './route-hooks.ts';

/**
 * Who may call a route: `public` (health, docs), `metrics` (METRICS_TOKEN when set), `local` (the
 * CLI's server.json token, checked by those routes), `authenticated` (any valid key: unmatched
 * URLs), or the scope a key needs.
 */
export type RouteAccess = 'public' | 'metrics' | 'local' | 'authenticated' | Scope;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The key that authenticated the request; null when the server runs open. */
    apiKey: AuthenticatedKey | null;
  }
}

/** Write routes by prefix; a write route under no listed prefix needs `admin` (fail closed). */
const WRITE_SCOPES: ReadonlyArray<[prefix: string, scope: Scope]> = [
  ['/v1/admin/', 'admin'],
  ['/v1/jobs', 'jobs:write'],
  ['/v1/prompts', 'evals:write'],
  ['/v1/datasets', 'evals:write'],
  ['/v1/evaluations', 'evals:write'],
];

const DASHBOARD_PAGE_URLS: ReadonlySet<string> = new Set(DASHBOARD_PAGES.map((page) => page.path));

const under = (url: string, prefix: string) => url === prefix || url.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);

/** The access rule of a route, decided once when the route is registered. */
export function routeAccess(method: string, url: string): RouteAccess {
  if (under(url, '/health') || under(url, '/docs') || method === 'OPTIONS') return 'public';
  // The dashboard's pages and scripts hold no data: the page calls the API with a key like any client.
  if ((method === 'GET' || method === 'HEAD') && (DASHBOARD_PAGE_URLS.has(url) || under(url, DASHBOARD_ASSETS_PREFIX))) return 'public';
  if (url === '/metrics') return 'metrics';
  if (under(url, '/local')) return 'local';
  if (under(url, '/v1/admin/')) return 'admin';
  if (method === 'GET' || method === 'HEAD') return 'read';
  return WRITE_SCOPES.find(([prefix]) => under(url, prefix))?.[1] ?? 'admin';
}

/** Cancellations are admin actions: audited with the key's name when they succeed. */
const AUDITED_ROUTES: Record<string, string> = {
  'POST /v1/jobs/:id/cancel': 'job.cancelled',
  'POST /v1/evaluations/:id/cancel': 'evaluation.cancelled',
};

export { isLoopbackHost };

/** How the server treats requests right now. */
export type AuthMode = 'keys' | 'open' | 'disabled';

/** `open`: loopback with no key; `disabled`: AUTH_DISABLED=true; otherwise keys are required. */
export function authMode(config: Config, activeKeys: number): AuthMode {
  if (config.access.authDisabled) return 'disabled';
  return activeKeys > 0 || !isLoopbackHost(config.host) ? 'keys' : 'open';
}

export interface AuthDeps {
  config: Config;
  logger: Logger;
  keys: ApiKeyCache;
  limits: RuntimeLimits;
  /** Counts rate limits in Redis when given (REDIS_URL), so they hold across API processes. */
  redis: Redis | undefined;
}

const BEARER = /^Bearer +(\S+) *$/i;

function bearerToken(request: FastifyRequest): string | undefined | null {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = BEARER.exec(header);
  return match ? match[1]! : null;
}

function sameSecret(given: string, expected: Buffer): boolean {
  const g = Buffer.from(given);
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/**
 * API keys with scopes, the /metrics token and rate limits: an onRequest hook on each route that
 * needs a caller, its rule from `routeAccess` (registered before any route). Returns the same check
 * for URLs no route matched, which the not-found handler's context runs. Order within the check: identify the
 * caller, count the request against its budget (failed authentications count against the caller's
 * IP), then refuse on a missing key or scope.
 */
export async function registerAuth(app: FastifyInstance, deps: AuthDeps): Promise<{ unmatched: onRequestHookHandler }> {
  const { config, keys, limits } = deps;
  app.decorateRequest('apiKey', null);
  await app.register(rateLimit, {
    global: false,
    timeWindow: 60_000,
    ...(deps.redis ? { store: redisRateLimitStore(deps.redis, `${config.queue.prefix}:ratelimit:`, deps.logger) } : {}),
  });
  // Anonymous IPv6 callers are counted per /64, as the plugin does by default: one host owns a whole /64.
  const keyOf = (request: FastifyRequest) => (request.apiKey ? `key:${request.apiKey.keyId}` : `ip:${normalizeIP(request.ip)}`);
  const readLimiter = app.createRateLimit({ max: () => limits.readPerMinute(), keyGenerator: (r) => `r:${keyOf(r)}` });
  const writeLimiter = app.createRateLimit({ max: () => limits.writePerMinute(), keyGenerator: (r) => `w:${keyOf(r)}` });
  const metricsToken = config.access.metricsToken ? Buffer.from(config.access.metricsToken) : undefined;

  const authenticate = async (request: FastifyRequest, reply: FastifyReply, access: Exclude<RouteAccess, 'public' | 'local'>): Promise<void> => {
    if (access === 'metrics') {
      if (!metricsToken) return;
      const token = bearerToken(request);
      if (!token || !sameSecret(token, metricsToken)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw new AppError('UNAUTHORIZED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>', { reason: token ? 'wrong_token' : 'missing' });
      }
      return;
    }

    let mode = authMode(config, keys.activeKeys());
    const token = mode === 'disabled' ? undefined : bearerToken(request);
    if (mode === 'open') {
      // Open only while no key exists: a valid key means one does (the count may lag its NOTIFY by a moment).
      if (!token || !(await keys.check(token)).ok) return;
      mode = 'keys';
    }
    let refusal: AppError | undefined;
    if (mode === 'keys') {
      if (token === undefined) {
        refusal = new AppError('UNAUTHORIZED', 'missing credentials: send Authorization: Bearer <API key> (an operator creates keys with `evalops apikey create`)', { reason: 'missing' });
      } else if (token === null) {
        refusal = new AppError('UNAUTHORIZED', 'the Authorization header must be "Bearer <API key>"', { reason: 'malformed' });
      } else {
        const check = await keys.check(token);
        if (check.ok) request.apiKey = check.key;
        else refusal = new AppError('UNAUTHORIZED', check.reason === 'revoked' ? 'this API key has been revoked' : 'unknown API key', { reason: check.reason });
      }
    }

    const write = request.method !== 'GET' && request.method !== 'HEAD';
    // Key and limit management is never rate limited: an operator must always be able to undo a limit set too tight.
    const exempt = access === 'admin' && !refusal && (mode === 'disabled' || (request.apiKey !== null && hasScope(request.apiKey.scopes, 'admin')));
    if (!exempt && (write ? limits.writePerMinute() : limits.readPerMinute()) > 0) {
      const result = await (write ? writeLimiter : readLimiter)(request);
      if (!result.isAllowed) {
        reply.header('x-ratelimit-limit', result.max);
        reply.header('x-ratelimit-remaining', result.remaining);
        reply.header('x-ratelimit-reset', result.ttlInSeconds);
        if (result.isExceeded) {
          reply.header('retry-after', result.ttlInSeconds);
          const budget = write ? 'rate.write_per_minute' : 'rate.read_per_minute';
          const who = request.apiKey ? `key "${request.apiKey.name}"` : `address ${request.ip}`;
          throw new AppError('RATE_LIMITED', `rate limit: more than ${result.max} ${write ? 'write' : 'read'} requests per minute for ${who} (${budget}); retry after ${result.ttlInSeconds} s`, {
            limit: result.max,
            retry_after_s: result.ttlInSeconds,
          });
        }
      }
    }

    if (refusal) {
      reply.header('www-authenticate', 'Bearer');
      throw refusal;
    }
    if (request.apiKey && access !== 'authenticated' && !hasScope(request.apiKey.scopes, access)) {
      const has = [...request.apiKey.scopes].join(', ') || 'no scope';
      throw new AppError('FORBIDDEN', `${request.method} ${request.routeOptions.url} needs scope "${access}"; key "${request.apiKey.name}" has ${has}`, {
        needed: access,
        key_name: request.apiKey.name,
        scopes: [...request.apiKey.scopes],
      });
    }
  };

  /** The hook of one access rule; callback style, so a request costs no extra promise. */
  const hookFor =
    (access: Exclude<RouteAccess, 'public' | 'local'>) =>
    (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
      authenticate(request, reply, access).then(() => done(), done);
    };
  // Each route gets its rule when it is registered (every route is registered after this, so none
  // can miss it), and a hook only when the rule asks for a caller: the public routes (health, what
  // load balancers hammer; the dashboard's shell) run none.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    // A route answering several methods takes the strictest rule among them.
    const rules = methods.map((m) => routeAccess(String(m).toUpperCase(), route.url));
    // A route may declare its rule (`config: { access }`) when the scope depends on what it acts on:
    // it then checks that scope itself (requireScope) once it knows the object.
    const access = route.config?.access ?? rules.find((r) => r !== 'read' && r !== 'public') ?? rules.find((r) => r === 'read') ?? rules[0]!;
    route.config = { ...(route.config ?? {}), access };
    if (access === 'public' || access === 'local') return;
    addRouteHook(route, 'onRequest', hookFor(access), 'first');
  });

  // Only the audited routes get the audit hook, with its event decided here: no other request runs it.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const event = methods.some((m) => String(m).toUpperCase() === 'POST') ? AUDITED_ROUTES[`POST ${route.url}`] : undefined;
    if (!event) return;
    const audit: onResponseHookHandler = (request, reply, done) => {
      if (reply.statusCode < 300 && request.method === 'POST') {
        auditLog(request.log, event, requestActor(request), { id: (request.params as { id?: string }).id, ip: request.ip, request_id: request.id });
      }
      done();
    };
    addRouteHook(route, 'onResponse', audit);
  });

  // URLs no route matched need a valid key (and count against the caller's budget) like any API
  // call: the not-found handler's context runs this (registerNotFound).
  return { unmatched: hookFor('authenticated') };
}

/**
 * Refuses a request whose key lacks `scope` (403 naming it and what the key has), for routes whose
 * scope depends on the object they act on (a job of an evaluation run needs `evals:write`). A server
 * running open or with AUTH_DISABLED has no key to check: every caller may act, as on other routes.
 */
export function requireScope(request: FastifyRequest, scope: Scope, action: string): void {
  const key = request.apiKey;
  if (!key || hasScope(key.scopes, scope)) return;
  const has = [...key.scopes].join(', ') || 'no scope';
  throw new AppError('FORBIDDEN', `${action} needs scope "${scope}"; key "${key.name}" has ${has}`, { needed: scope, key_name: key.name, scopes: [...key.scopes] });
}

/** The audit actor of a request: the key's name, or `anonymous` when the server runs open. */
export function requestActor(request: FastifyRequest): string {
  return request.apiKey ? `key:${request.apiKey.name}` : 'anonymous';
}
