import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../obs/metrics.ts';
import type { RequestCounter } from '../obs/request-counter.ts';

/**
 * One JSON log line (debug for `/health`, info otherwise) and the request metrics per answered request. The route label is the route
 * pattern (`/v1/jobs/:id`), never the raw path, so label cardinality stays bounded. With a
 * `counter`, the request is also counted for the measured availability SLI (request_counts).
 */
export function registerRequestObserver(app: FastifyInstance, metrics: Metrics, counter?: RequestCounter): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const durationMs = reply.elapsedTime;
    const labels = { method: request.method, route, status_code: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, durationMs / 1000);
    counter?.record(request.routeOptions.url, status, durationMs);
    // Liveness probes arrive every few seconds from every load balancer: logged at debug, so they
    // neither drown the log nor cost /health its speed (LOG_LEVEL=debug shows them).
    const level = route === '/health' ? 'debug' : 'info';
    request.log[level](
      { method: request.method, path: request.url.split('?')[0], route, status, duration_ms: Math.round(durationMs * 1000) / 1000 },
      'request',
    );
    done();
  });
}
