import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../obs/metrics.ts';

/** Prometheus text exposition at `/metrics`. */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
};
