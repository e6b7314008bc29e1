import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { evaluationRequestSchema } from '../../evals/evaluation-spec.ts';
import { type EvaluationService, parseRunStatuses } from '../../evals/evaluation-service.ts';
import { RUN_METADATA_SCHEMA } from '../../evals/run-metadata.ts';
import { JOB_STATUSES } from '../../db/schema.ts';

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

const fileSchema = z.object({ name: z.string(), bytes: z.number(), sha256: z.string() });

const runSchema = z.object({
  run_id: z.string(),
  job_id: z.string().nullable(),
  status: z.enum(JOB_STATUSES),
  name: z.string().nullable(),
  prompt_version: z.string(),
  data_snapshot_id: z.string(),
  provider: z.string(),
  model: z.string(),
  mode: z.enum(['live', 'replay']),
  seed: z.number(),
  sample_size: z.number().nullable(),
  concurrency: z.number(),
  rerun_of: z.string().nullable(),
  progress: z.unknown(),
  thresholds_passed: z.boolean().nullable(),
  summary: z.unknown(),
  metadata: z.unknown(),
  run_dir: z.string().nullable(),
  files: z.array(fileSchema).nullable(),
  mlflow: z.unknown(),
  error_message: z.string().nullable(),
  spec: z.unknown(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});

const idParams = z.object({ id: z.string().describe('run id (UUID)') });
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

const CONTENT_TYPES: Record<string, string> = { '.jsonl': 'application/x-ndjson', '.json': 'application/json', '.partial': 'application/octet-stream' };

/** Evaluation runs: submit, follow, read results and files, compare, re-run. */
export const evaluationRoutes: FastifyPluginAsyncZod<{ evaluations: EvaluationService }> = async (app, { evaluations }) => {
  const tags = ['evaluations'];

  app.get(
    '/v1/schemas/run-metadata',
    { schema: { tags, summary: 'The JSON Schema every run_metadata.json must satisfy (also in docs/run-metadata.schema.json)' } },
    async (_request, reply) => reply.type('application/schema+json').send(RUN_METADATA_SCHEMA),
  );

  app.post(
    '/v1/evaluations',
    { schema: { tags, summary: 'Start an evaluation run (a job of type evaluation)', body: evaluationRequestSchema, response: { 202: runSchema, '4xx': errorSchema } } },
    async (request, reply) => reply.status(202).send(await evaluations.submit(request.body)),
  );

  app.get(
    '/v1/evaluations',
    {
      schema: {
        tags,
        summary: 'Evaluation runs, newest first',
        querystring: z.object({
          status: z.string().optional().describe('one status or a comma-separated list'),
          prompt_version: z.string().optional(),
          cursor: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ runs: z.array(runSchema), next_cursor: z.string().nullable() }), '4xx': errorSchema },
      },
    },
    async (request) => {
      const q = request.query;
      return evaluations.list({ status: parseRunStatuses(q.status), prompt_version: q.prompt_version, cursor: q.cursor, limit: q.limit });
    },
  );

  app.get(
    '/v1/evaluations/compare',
    {
      schema: {
        tags,
        summary: 'Per-scorer deltas with a paired bootstrap interval and McNemar test, and the cases that flipped',
        querystring: z.object({ base: z.string(), head: z.string(), max_flipped: z.coerce.number().int().min(0).max(100_000).default(1000) }),
        '4xx': errorSchema,
      },
    },
    async (request) => {
      const { base, head, same_dataset, comparison } = await evaluations.compare(request.query.base, request.query.head, { maxFlipped: request.query.max_flipped });
      const brief = (r: typeof base) => ({ run_id: r.run_id, prompt_version: r.prompt_version, data_snapshot_id: r.data_snapshot_id, model: r.model, mode: r.mode, status: r.status });
      return { base: brief(base), head: brief(head), same_dataset, ...comparison };
    },
  );

  app.get('/v1/evaluations/:id', { schema: { tags, summary: 'One run, with its progress, summary, metadata and files', params: idParams, response: { 200: runSchema, '4xx': errorSchema } } }, async (request) =>
    evaluations.get(request.params.id),
  );

  app.post(
    '/v1/evaluations/:id/cancel',
    { schema: { tags, summary: 'Cancel a queued or running run', params: idParams, response: { 202: runSchema, '4xx': errorSchema } } },
    async (request, reply) => reply.status(202).send(await evaluations.cancel(request.params.id)),
  );

  app.post(
    '/v1/evaluations/:id/rerun',
    {
      schema: {
        tags,
        summary: 'Run the same specification again; replay mode (the default) must reproduce results.jsonl byte for byte',
        params: idParams,
        body: z.object({ mode: z.enum(['live', 'replay']).optional() }).optional(),
        response: { 202: runSchema, '4xx': errorSchema },
      },
    },
    async (request, reply) => reply.status(202).send(await evaluations.rerun(request.params.id, { mode: request.body?.mode })),
  );

  app.get(
    '/v1/evaluations/:id/results',
    {
      schema: {
        tags,
        summary: 'results.jsonl, streamed, one case per line in dataset order; filterable',
        params: idParams,
        querystring: z.object({
          pass: bool.optional().describe('true: passing cases only; false: failing (and errored) ones'),
          error: bool.optional().describe('true: errored cases only; false: answered ones'),
          offset: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(10_000_000).optional(),
        }),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const stream = await evaluations.results(request.params.id, { pass: q.pass, errored: q.error, offset: q.offset, limit: q.limit });
      return reply.type('application/x-ndjson').send(stream);
    },
  );

  app.get(
    '/v1/evaluations/:id/files',
    { schema: { tags, summary: "The run folder's files with size and sha256", params: idParams, response: { 200: z.object({ files: z.array(fileSchema) }), '4xx': errorSchema } } },
    async (request) => ({ files: await evaluations.files(request.params.id) }),
  );

  app.get(
    '/v1/evaluations/:id/files/:name',
    { schema: { tags, summary: 'Download one file of the run folder (plain names only: nothing outside the folder)', params: z.object({ id: z.string(), name: z.string() }) } },
    async (request, reply) => {
      const file = await evaluations.filePath(request.params.id, request.params.name);
      const name = path.basename(file);
      return reply
        .type(CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(createReadStream(file));
    },
  );
};
