import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DatabaseHandle } from '../../db/database.ts';
import { migrateUp, migrationStatus } from '../../db/migrator.ts';
import { checkReadStatement, RefusedStatementError } from '../../db/read-statement-guard.ts';
import { ReadStatementBusyError } from '../../db/read-statement-runner.ts';
import { AppError } from '../../errors.ts';
import { localTokenCheck } from './local-token.ts';

/**
 * Lets the CLI reach the embedded database while this server holds it (PGlite allows one process).
 * Authenticated by the token the server wrote to DATA_DIR/server.json (mode 0600); hidden from /docs.
 */
export const localAdminRoutes: FastifyPluginAsyncZod<{ database: DatabaseHandle; token: string }> = async (app, { database, token }) => {
  app.addHook('onRequest', localTokenCheck(token));

  const body = z.strictObject({ query: z.string().min(1).max(100_000), timeout_ms: z.number().int().min(100).max(600_000).default(30_000) });

  // `evalops sql`: the operator's statement, checked, as the reader role, off this event loop.
  app.post('/local/sql', { schema: { hide: true, body } }, async (request, reply) => {
    try {
      const json = await database.operatorQuery(request.body.query, request.body.timeout_ms);
      return reply.type('application/json; charset=utf-8').send(Buffer.from(json.buffer, json.byteOffset, json.byteLength));
    } catch (err) {
      throw answerFor(err);
    }
  });

  // The CLI's own reads (doctor, slo, incident) through this server: fixed queries of evalops that
  // take milliseconds, run here directly; still only one read statement.
  app.post('/local/read', { schema: { hide: true, body } }, async (request) => {
    try {
      await checkReadStatement(request.body.query);
      return await database.readOnlyQuery(request.body.query, request.body.timeout_ms);
    } catch (err) {
      throw answerFor(err);
    }
  });

  app.get('/local/migrations', { schema: { hide: true } }, async () => migrationStatus(database.db));

  app.post('/local/migrations/up', { schema: { hide: true } }, async () => {
    const result = await migrateUp(database.db);
    return { applied: result.applied, error: result.error?.message ?? null, failed: result.failed ?? null };
  });
};

/** The operator's SQL is input: a refusal or a failing statement is an answer, not a server fault. */
function answerFor(err: unknown): AppError {
  if (err instanceof RefusedStatementError) return new AppError('VALIDATION', err.message);
  if (err instanceof ReadStatementBusyError) return new AppError('CONFLICT', err.message);
  return new AppError('VALIDATION', `query failed: ${(err as Error).message}`);
}
