import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { type DetailedHealth, detailedHealth, type HealthDeps } from '../../ops/health-check.ts';

/**
 * Whether the caller of this public route may see where the database is (its redacted URL): a
 * caller with a valid key that can read; an anonymous one sees the kind only.
 */
export type LocationReader = (authorization: string | undefined) => Promise<boolean>;

/** The answer without connection strings, for callers who did not prove they may read. */
function withoutLocations(health: DetailedHealth): DetailedHealth {
  const { location: _location, ...details } = health.components.database.details;
  return { ...health, components: { ...health.components, database: { ...health.components.database, details } } };
}

/** `/health` (liveness) and `/health/detailed` (every dependency, bounded in time). */
export const healthRoutes: FastifyPluginAsyncZod<{ deps: HealthDeps; mayReadLocations: LocationReader }> = async (app, { deps, mayReadLocations }) => {
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
    async (req, reply) => {
      const [health, mayRead] = await Promise.all([detailedHealth(deps), mayReadLocations(req.headers.authorization).catch(() => false)]);
      return reply.status(health.status === 'unhealthy' ? 503 : 200).send(mayRead ? health : withoutLocations(health));
    },
  );
};
