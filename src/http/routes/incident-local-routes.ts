import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { EndRequest, IncidentService, StartRequest, UpdateRequest } from '../../ops/incident-service.ts';
import { localTokenCheck } from './local-token.ts';

/**
 * `evalops incident` through the server that holds the embedded database (PGlite admits one
 * process): the same service, called here. Authenticated by the token of DATA_DIR/server.json like
 * the other /local routes; hidden from /docs.
 */
export const localIncidentRoutes: FastifyPluginAsyncZod<{ incidents: IncidentService; token: string }> = async (app, { incidents, token }) => {
  app.addHook('onRequest', localTokenCheck(token));
  // The service validates the bodies (startRequestSchema, …): its messages name the field.
  app.post('/local/incidents/start', { schema: { hide: true } }, async (request) => incidents.start(request.body as StartRequest));
  app.post('/local/incidents/update', { schema: { hide: true } }, async (request) => incidents.update(request.body as UpdateRequest));
  app.post('/local/incidents/end', { schema: { hide: true } }, async (request) => incidents.end(request.body as EndRequest));
  app.get('/local/incidents', { schema: { hide: true, querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(50) }) } }, async (request) => ({
    incidents: await incidents.list(request.query.limit),
  }));
  app.get('/local/incidents/show', { schema: { hide: true, querystring: z.strictObject({ id: z.string().optional() }) } }, async (request) => incidents.show(request.query.id));
};
