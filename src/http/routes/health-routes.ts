import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { detailedHealth, type HealthDeps } from '../../ops/health-check.ts';

/** `/health` (liveness) and `/health/detailed` (every dependency, bounded in time). */
export const healthRoutes: FastifyPluginAsyncZod<{ deps: HealthDeps }> = async (app, { deps }) => {
  const ok = '{"status":"ok"}';
  app.get('/health', { schema: { tags: ['health'], summary: 'Liveness: 200 while the process can answer, whatever its dependencies do' } }, (_req, reply) => {
    // This is the route load balancers hammer: a constant body, not serialised per request, from a
    // synchronous handler (no promise per request). The content type names its charset, so Fastify
    // has nothing to add to it per request.
    reply.type('application/json; charset=utf-8').send(ok);
  });

  app.get(
    '/health/detailed',
    { schema: { tags: ['health'], summary: 'Status of the database, Redis and background tasks; 503 when unhealthy' } },
    async (_req, reply) => {
      const health = await detailedHealth(deps);
      return reply.status(health.status === 'unhealthy' ? 503 : 200).send(health);
    },
  );
};
