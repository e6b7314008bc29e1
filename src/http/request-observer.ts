import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { Logger } from '../obs/logger.ts';
import type { Metrics, RouteRequestMetrics } from '../obs/metrics.ts';
import type { RequestCounter } from '../obs/request-counter.ts';
import { addRouteHook } from './route-hooks.ts';

export interface RequestObserverDeps {
  metrics: Metrics;
  logger: Logger;
  /** Counts each request for the measured availability SLI (request_counts) when given. */
  counter?: RequestCounter | undefined;
}

/** The route label of requests no route matched (404s, and refusals before routing). */
const UNMATCHED = 'unmatched';

/**
 * One JSON log line (debug for `/health`, info otherwise) and the request metrics per answered
 * request. The route label is the route pattern (`/v1/jobs/:id`), never the raw path, so label
 * cardinality stays bounded. With a `counter`, the request is also counted for the measured
 * availability SLI (request_counts).
 *
 * Each route gets its own onResponse hook when it is registered, holding its pattern, its metric
 * series and its log level, so a request costs no lookup of its route (`request.routeOptions` builds
 * a new object on each read) and no hook of the root app. Requests no route matched are observed by
 * the hook returned, which the not-found handler's context runs (registerNotFound).
 * Registered before any route.
 */
export function registerRequestObserver(app: FastifyInstance, deps: RequestObserverDeps): { unmatched: onResponseHookHandler } {
  const { metrics, logger, counter } = deps;

  const observe = (request: FastifyRequest, reply: FastifyReply, route: string, series: RouteRequestMetrics, level: 'info' | 'debug'): void => {
    const status = reply.statusCode;
    const durationMs = reply.elapsedTime;
    series.observe(status, durationMs / 1000);
    counter?.record(route === UNMATCHED ? undefined : route, status, durationMs);
    if (!logger.isLevelEnabled(level)) return;
    // Written with the root logger and the request id in the line: a request child logger is made
    // only when something else logs through request.log (src/obs/logger.ts lazyChildLogger).
    const url = request.url;
    const query = url.indexOf('?');
    logger[level](
      { request_id: request.id, method: request.method, path: query === -1 ? url : url.slice(0, query), route, status, duration_ms: Math.round(durationMs * 1000) / 1000 },
      'request',
    );
  };

  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path ?? '';
    // Liveness probes arrive every few seconds from every load balancer: logged at debug, so they
    // neither drown the log nor cost /health its speed (LOG_LEVEL=debug shows them).
    const level = url === '/health' ? 'debug' : 'info';
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => String(m).toUpperCase());
    const seriesOf = new Map(methods.map((m) => [m, metrics.http.forRoute(m, url)] as const));
    const only = methods.length === 1 ? seriesOf.get(methods[0]!)! : undefined;
    const hook: onResponseHookHandler = (request, reply, done) => {
      observe(request, reply, url, only ?? seriesOf.get(request.method) ?? metrics.http.forRoute(request.method, url), level);
      done();
    };
    addRouteHook(route, 'onResponse', hook);
  });

  return {
    unmatched: (request, reply, done) => {
      observe(request, reply, UNMATCHED, metrics.http.forRoute(request.method, UNMATCHED), 'info');
      done();
    },
  };
}
