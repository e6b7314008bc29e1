import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../obs/metrics.ts';

/**
 * One JSON log line and the request metrics per answered request. The route label is the route
 * pattern (`/v1/jobs/:id`), never the raw path, so label cardinality stays bounded.
 */
export function registerRequestObserver(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const durationMs = reply.elapsedTime;
    const labels = { method: request.method, route, status_code: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, durationMs / 1000);
    request.log.info(
      { method: request.method, path: request.url.split('?')[0], route, status, duration_ms: Math.round(durationMs * 1000) / 1000 },
      'request',
    );
    done();
  });
}
