import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PromptService } from '../../evals/prompt-service.ts';

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

const promptVersionSchema = z.object({
  prompt_version: z.string(),
  name: z.string(),
  version: z.number(),
  description: z.string().nullable(),
  messages: z.array(z.object({ role: z.string(), content: z.string() })),
  params: z.record(z.string(), z.unknown()),
  content_hash: z.string(),
  created_at: z.string(),
});

const pushBody = z.strictObject({
  name: z.string().describe('1-100 characters of a-z, 0-9, ".", "_", "-"'),
  description: z.string().optional(),
  messages: z.array(z.strictObject({ role: z.string(), content: z.string() })).describe('chat messages with {{var}} placeholders'),
  params: z.record(z.string(), z.unknown()).optional().describe('default sampling params (temperature, max_tokens, ...)'),
});

/** Prompts: immutable versions, `prompt_version` = name@N. */
export const promptRoutes: FastifyPluginAsyncZod<{ prompts: PromptService }> = async (app, { prompts }) => {
  const tags = ['prompts'];

  app.post(
    '/v1/prompts',
    {
      schema: {
        tags,
        summary: 'Store the next version of a prompt (an unchanged push returns the latest version with 200)',
        body: pushBody,
        response: { 200: promptVersionSchema, 201: promptVersionSchema, '4xx': errorSchema },
      },
    },
    async (request, reply) => {
      const { prompt, created } = await prompts.push(request.body);
      return reply.status(created ? 201 : 200).send(prompt);
    },
  );

  app.get(
    '/v1/prompts',
    {
      schema: {
        tags,
        summary: 'Every prompt with its latest version',
        response: { 200: z.object({ prompts: z.array(z.object({ name: z.string(), latest_version: z.number(), prompt_version: z.string(), versions: z.number(), updated_at: z.string() })) }) },
      },
    },
    async () => ({ prompts: await prompts.list() }),
  );

  app.get(
    '/v1/prompts/:name/versions',
    { schema: { tags, summary: 'Every version of a prompt, newest first', params: z.object({ name: z.string() }), response: { 200: z.object({ versions: z.array(promptVersionSchema) }), '4xx': errorSchema } } },
    async (request) => ({ versions: await prompts.versions(request.params.name) }),
  );

  app.get(
    '/v1/prompts/:name/versions/:version',
    {
      schema: {
        tags,
        summary: 'One version (`latest` for the newest)',
        params: z.object({ name: z.string(), version: z.string().regex(/^([1-9][0-9]{0,8}|latest)$/, 'must be a version number or latest') }),
        response: { 200: promptVersionSchema, '4xx': errorSchema },
      },
    },
    async (request) => prompts.get(request.params.version === 'latest' ? request.params.name : `${request.params.name}@${request.params.version}`),
  );

  app.get(
    '/v1/prompts/:ref',
    { schema: { tags, summary: 'One version by `name@N`, or the latest by `name`', params: z.object({ ref: z.string() }), response: { 200: promptVersionSchema, '4xx': errorSchema } } },
    async (request) => prompts.get(request.params.ref),
  );
};
