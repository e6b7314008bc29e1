import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AccessAdmin } from '../../ops/access-admin.ts';
import { SCOPES } from '../../ops/api-key-service.ts';
import { localTokenCheck } from './local-token.ts';

const keyInfo = z.object({
  key_id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.string()),
  created_by: z.string().nullable(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  revoked_by: z.string().nullable(),
});
const limitLine = z.object({
  name: z.string(),
  value: z.number(),
  source: z.enum(['runtime', 'default']),
  default: z.number().nullable(),
  env: z.string().nullable(),
  unlimited: z.boolean(),
  updated_at: z.string().nullable(),
  updated_by: z.string().nullable(),
  meaning: z.string(),
});
/** A route that takes no body refuses one with fields, as every body refuses fields it does not know. */
const noBody = z.strictObject({}).nullish();
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

export interface AccessAdminRouteOptions {
  admin: AccessAdmin;
  /** The audit actor of a request. */
  actorOf: (request: FastifyRequest) => string;
  /** Hidden from /docs (the CLI's local routes). */
  hide?: boolean;
}

/**
 * API keys and runtime limits over HTTP. Mounted twice: under /v1/admin for keys with the `admin`
 * scope, and under /local for the CLI when the server holds the embedded database.
 */
export const accessAdminRoutes: FastifyPluginAsyncZod<AccessAdminRouteOptions> = async (app, { admin, actorOf, hide = false }) => {
  const tags = ['admin'];

  app.get(
    '/api-keys',
    {
      schema: {
        hide,
        tags,
        summary: 'API keys (never the keys themselves), newest first',
        querystring: z.strictObject({ include_revoked: z.enum(['true', 'false']).default('false') }),
        response: { 200: z.object({ keys: z.array(keyInfo) }), '4xx': errorSchema },
      },
    },
    async (request) => ({ keys: await admin.listKeys({ includeRevoked: request.query.include_revoked === 'true' }) }),
  );

  app.post(
    '/api-keys',
    {
      schema: {
        hide,
        tags,
        summary: 'Create an API key: the answer is the only time the key is shown',
        body: z.strictObject({ name: z.string().min(1).max(64), scopes: z.array(z.string().max(40)).min(1).max(SCOPES.length).describe(`some of ${SCOPES.join(', ')}`) }),
        response: { 201: keyInfo.extend({ key: z.string() }), '4xx': errorSchema },
      },
    },
    async (request, reply) => {
      const { key, info } = await admin.createKey(request.body, actorOf(request));
      return reply.status(201).header('cache-control', 'no-store').send({ ...info, key });
    },
  );

  app.post(
    '/api-keys/:key/revoke',
    {
      schema: {
        hide,
        tags,
        summary: 'Revoke a key by name or id; every API process refuses it from its next request',
        params: z.object({ key: z.string().max(100).describe('key name or key id') }),
        body: noBody,
        response: { 200: keyInfo, '4xx': errorSchema },
      },
    },
    async (request) => admin.revokeKey(request.params.key, actorOf(request)),
  );

  app.get('/limits', { schema: { hide, tags, summary: 'Effective runtime limits and where each comes from', response: { 200: z.object({ limits: z.array(limitLine) }) } } }, async () => ({
    limits: await admin.showLimits(),
  }));

  app.put(
    '/limits',
    {
      schema: {
        hide,
        tags,
        summary: 'Set runtime limits ({"rate.read_per_minute": 600, ...}); every API process applies them within seconds',
        body: z.record(z.string().max(160), z.union([z.number(), z.string().max(30)])),
        response: { 200: z.object({ limits: z.array(limitLine) }), '4xx': errorSchema },
      },
    },
    async (request) => ({ limits: await admin.setLimits(request.body, actorOf(request)) }),
  );

  app.delete(
    '/limits/:name',
    {
      schema: { hide, tags, summary: 'Drop a runtime value: the configured default applies again', params: z.object({ name: z.string().max(160) }), response: { 200: z.object({ limits: z.array(limitLine) }), '4xx': errorSchema } },
    },
    async (request) => ({ limits: await admin.resetLimits([request.params.name], actorOf(request)) }),
  );
};

const CLI_ACTOR = /^cli:[\w.@-]{1,64}$/;

/**
 * The same routes for the CLI under /local, authenticated by the token of DATA_DIR/server.json
 * (mode 0600) like the other local routes. The CLI names its OS user in `x-evalops-actor`.
 */
export const localAccessRoutes: FastifyPluginAsyncZod<{ admin: AccessAdmin; token: string }> = async (app, { admin, token }) => {
  app.addHook('onRequest', localTokenCheck(token));
  const actorOf = (request: FastifyRequest) => {
    const claimed = request.headers['x-evalops-actor'];
    return typeof claimed === 'string' && CLI_ACTOR.test(claimed) ? claimed : 'cli:local';
  };
  await app.register(accessAdminRoutes, { admin, actorOf, hide: true });
};
