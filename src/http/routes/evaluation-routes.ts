import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { evaluationRequestSchema } from '../../evals/evaluation-spec.ts';
import { type EvaluationService, parseRunStatuses } from '../../evals/evaluation-service.ts';
import { MAX_SEARCH_CHARS, parseCaseStatuses } from '../../evals/case-pages.ts';
import { MAX_FLIPPED_WITH_TEXTS, MAX_TEXT_CHARS } from '../../evals/compare-cases.ts';
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

/** A route that takes no body refuses one with fields, as every body refuses fields it does not know. */
const noBody = z.strictObject({}).nullish();

const scoreSchema = z.object({ score: z.number().nullable(), pass: z.boolean(), reason: z.string().nullable() });

const caseSchema = z.object({
  index: z.number().describe('0-based position of the case in results.jsonl (dataset order)'),
  id: z.string(),
  vars: z.record(z.string(), z.unknown()),
  expected: z.unknown(),
  output: z.string().nullable(),
  pass: z.boolean(),
  scores: z.record(z.string(), scoreSchema),
  latency_ms: z.number().nullable(),
  tokens: z.object({ prompt: z.number(), completion: z.number(), total: z.number() }).nullable(),
  error: z.string().nullable(),
});

const casePageSchema = z.object({
  total: z.number().describe('cases in the run'),
  matched: z.number().describe('cases matching status and q (exact)'),
  offset: z.number(),
  limit: z.number(),
  cases: z.array(caseSchema),
});

const briefRunSchema = z.object({ run_id: z.string(), prompt_version: z.string(), data_snapshot_id: z.string(), model: z.string(), mode: z.enum(['live', 'replay']), status: z.enum(JOB_STATUSES) });
const sideSchema = z.object({ output: z.string().nullable(), error: z.string().nullable() });
const comparisonSchema = z.object({
  base: briefRunSchema,
  head: briefRunSchema,
  same_dataset: z.boolean(),
  pairedCases: z.number(),
  onlyInBase: z.number(),
  onlyInHead: z.number(),
  scorers: z.array(
    z.object({
      scorer: z.string(),
      pairedCases: z.number(),
      baseMean: z.number().nullable(),
      headMean: z.number().nullable(),
      meanDelta: z.number().nullable().describe('head - base'),
      ci: z.object({ lower: z.number(), upper: z.number(), confidence: z.number(), method: z.enum(['bootstrap', 'normal']), resamples: z.number().nullable() }).nullable(),
      pairedPassCases: z.number(),
      basePassRate: z.number().nullable(),
      headPassRate: z.number().nullable(),
      mcnemar: z.object({ passToFail: z.number(), failToPass: z.number(), exactP: z.number(), chiSquare: z.number().nullable(), chiSquareP: z.number().nullable() }),
    }),
  ),
  flipped: z.array(
    z.object({
      id: z.string(),
      scorer: z.string(),
      from: z.enum(['pass', 'fail']),
      to: z.enum(['pass', 'fail']),
      baseScore: z.number().nullable(),
      headScore: z.number().nullable(),
      vars: z.record(z.string(), z.unknown()).optional(),
      expected: z.unknown().optional(),
      base: sideSchema.optional(),
      head: sideSchema.optional(),
      truncated: z.boolean().optional().describe(`an output or error was cut at ${MAX_TEXT_CHARS} characters`),
    }),
  ),
  flippedTotal: z.number(),
});
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
        querystring: z.strictObject({
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
        description:
          `Flipped cases come regressions (pass -> fail) first. With outputs=true (the default) the first ${MAX_FLIPPED_WITH_TEXTS} of them carry vars, expected ` +
          `and both runs' output and error (each cut at ${MAX_TEXT_CHARS} characters), for reading them side by side.`,
        querystring: z.strictObject({
          base: z.string(),
          head: z.string(),
          max_flipped: z.coerce.number().int().min(0).max(100_000).default(1000),
          outputs: bool.default(true).describe('attach inputs and both outputs to the flipped cases'),
        }),
        response: { 200: comparisonSchema, '4xx': errorSchema },
      },
    },
    async (request) => {
      const { base, head, same_dataset, comparison } = await evaluations.compare(request.query.base, request.query.head, { maxFlipped: request.query.max_flipped, outputs: request.query.outputs });
      const brief = (r: typeof base) => ({ run_id: r.run_id, prompt_version: r.prompt_version, data_snapshot_id: r.data_snapshot_id, model: r.model, mode: r.mode, status: r.status });
      return { base: brief(base), head: brief(head), same_dataset, ...comparison };
    },
  );

  app.get('/v1/evaluations/:id', { schema: { tags, summary: 'One run, with its progress, summary, metadata and files', params: idParams, response: { 200: runSchema, '4xx': errorSchema } } }, async (request) =>
    evaluations.get(request.params.id),
  );

  app.post(
    '/v1/evaluations/:id/cancel',
    { schema: { tags, summary: 'Cancel a queued or running run', params: idParams, body: noBody, response: { 202: runSchema, '4xx': errorSchema } } },
    async (request, reply) => reply.status(202).send(await evaluations.cancel(request.params.id)),
  );

  app.post(
    '/v1/evaluations/:id/rerun',
    {
      schema: {
        tags,
        summary: 'Run the same specification again; replay mode (the default) must reproduce results.jsonl byte for byte',
        params: idParams,
        body: z.strictObject({ mode: z.enum(['live', 'replay']).optional() }).optional(),
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
        querystring: z.strictObject({
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
    '/v1/evaluations/:id/cases',
    {
      schema: {
        tags,
        summary: "A page of a finished run's cases in dataset order, filtered by outcome and searched, with exact counts",
        description:
          'Reads through an index of results.jsonl (built on first use, kept in memory for recently read runs), so a page deep in a large run ' +
          'answers as fast as the first. `q` is looked for, case-insensitively, in the id, vars, expected, output and error; the first search ' +
          'of a run reads its whole file once and keeps the matches for the following pages.',
        params: idParams,
        querystring: z.strictObject({
          offset: z.coerce.number().int().min(0).default(0).describe('matching cases to skip'),
          limit: z.coerce.number().int().min(1).max(500).default(50),
          status: z.string().optional().describe('pass (answered, every scorer passed), fail (answered, a scorer failed), error (no answer); comma-separated for several'),
          q: z.string().max(MAX_SEARCH_CHARS).optional().describe('text to look for'),
        }),
        response: { 200: casePageSchema, '4xx': errorSchema },
      },
    },
    async (request) => {
      const q = request.query;
      return evaluations.cases(request.params.id, { offset: q.offset, limit: q.limit, status: parseCaseStatuses(q.status), q: q.q });
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
