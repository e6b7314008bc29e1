import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DatabaseHandle } from '../../db/database.ts';
import { migrateUp, migrationStatus } from '../../db/migrator.ts';
import { AppError } from '../../errors.ts';

/**
 * Lets the CLI reach the embedded database while this server holds it (PGlite allows one process).
 * Authenticated by the token the server wrote to DATA_DIR/server.json (mode 0600); hidden from /docs.
 */
export const localAdminRoutes: FastifyPluginAsyncZod<{ database: DatabaseHandle; token: string }> = async (app, { database, token }) => {
  const expected = Buffer.from(`Bearer ${token}`);
  app.addHook('onRequest', async (request) => {
    const given = Buffer.from(request.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError('UNAUTHORIZED', 'local admin routes need the token from DATA_DIR/server.json');
    }
  });

  app.post(
    '/local/sql',
    { schema: { hide: true, body: z.strictObject({ query: z.string().min(1).max(100_000), timeout_ms: z.number().int().min(100).max(600_000).default(30_000) }) } },
    async (request) => {
      try {
        return await database.readOnlyQuery(request.body.query, request.body.timeout_ms);
      } catch (err) {
        // The operator's SQL is input: its errors are answers, not server faults.
        throw new AppError('VALIDATION', `query failed: ${(err as Error).message}`);
      }
    },
  );

  app.get('/local/migrations', { schema: { hide: true } }, async () => migrationStatus(database.db));

  app.post('/local/migrations/up', { schema: { hide: true } }, async () => {
    const result = await migrateUp(database.db);
    return { applied: result.applied, error: result.error?.message ?? null, failed: result.failed ?? null };
  });
};
