import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import { parseDuration } from '../../config/duration.ts';
import { parseRfc3339 } from '../../config/timestamp.ts';
import { JOB_STATUSES, type JobStatus } from '../../db/schema.ts';
import { validation } from '../../errors.ts';
import { type JobService, MAX_BATCH_JOBS } from '../../jobs/job-service.ts';
import { requireScope } from '../auth.ts';

const jobSchema = z.object({
  job_id: z.string(),
  type: z.string(),
  status: z.enum(JOB_STATUSES),
  payload: z.unknown(),
  result: z.unknown(),
  error_message: z.string().nullable(),
  attempts: z.number(),
  max_attempts: z.number(),
  priority: z.number(),
  run_at: z.string(),
  idempotency_key: z.string().nullable(),
  cancel_requested_at: z.string().nullable(),
  locked_by: z.string().nullable(),
  lease_expires_at: z.string().nullable(),
  progress: z.unknown(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  updated_at: z.string(),
});

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });
const idParams = z.object({ id: z.string().describe('job id (UUID)') });

/** A route that takes no body refuses one with fields, as every body refuses fields it does not know. */
const noBody = z.strictObject({}).nullish();

const submitBody = z.strictObject({
  type: z.string().min(1).max(100).describe('a registered job type, e.g. noop or sleep'),
  payload: z.record(z.string(), z.unknown()).optional().describe('JSON object handed to the handler'),
  idempotency_key: z.string().min(1).max(200).optional().describe('a repeated key returns the first job instead of creating another'),
  max_attempts: z.number().int().min(1).max(100).optional(),
  priority: z.number().int().min(-1000).max(1000).optional().describe('higher runs first; default 0'),
  run_at: z.string().optional().describe('RFC 3339 time with a time zone (2026-12-08T09:30:00Z) before which the job does not start'),
});

const batchBody = z.strictObject({
  jobs: z
    .array(submitBody)
    .min(1, 'a batch holds at least 1 job')
    .max(MAX_BATCH_JOBS, `a batch holds at most ${MAX_BATCH_JOBS} jobs (MAX_BATCH_JOBS); send more in several batches`)
    .describe(`1 to ${MAX_BATCH_JOBS} jobs, each as the body of POST /v1/jobs`),
});

/** `since` accepts a duration (`15m`, `1h`, `7d`) or an RFC 3339 time with a time zone. */
function parseSince(value: string): Date {
  const ms = parseDuration(value);
  // A duration too long for a Date (found by fuzzing: `since=9007199254740994`) is an input error, not a 500.
  if (ms !== undefined && Number.isNaN(new Date(Date.now() - ms).getTime())) throw validation(`since: "${value}" reaches before the earliest representable time`, { field: 'since' });
  if (ms !== undefined) return new Date(Date.now() - ms);
  const date = parseRfc3339(value);
  if (!date) throw validation(`since: "${value.slice(0, 60)}" is neither a duration like 1h or 30m nor an RFC 3339 time such as 2026-12-08T09:30:00Z`, { field: 'since' });
  return date;
}

function parseStatuses(value: string | undefined): JobStatus[] | undefined {
  if (!value) return undefined;
  const statuses = value.split(',').map((s) => s.trim());
  const bad = statuses.filter((s) => !(JOB_STATUSES as readonly string[]).includes(s));
  if (bad.length) throw validation(`status: ${bad.map((b) => `"${b}"`).join(', ')} is not a status; use ${JOB_STATUSES.join(', ')}`, { field: 'status' });
  return statuses as JobStatus[];
}

/** The jobs API: thin handlers that parse, call the JobService and shape the reply. */
export const jobRoutes: FastifyPluginAsyncZod<{ jobs: JobService }> = async (app, { jobs }) => {
  const tags = ['jobs'];

  app.post(
    '/v1/jobs',
    { schema: { tags, summary: 'Submit a job', body: submitBody, response: { 200: jobSchema, 202: jobSchema, '4xx': errorSchema } } },
    async (request, reply) => {
      const { job, created } = await jobs.submit(request.body);
      if (!created) reply.header('idempotent-replayed', 'true');
      return reply.status(created ? 202 : 200).send(job);
    },
  );

  app.post(
    '/v1/jobs/batch',
    {
      schema: {
        tags,
        summary: `Submit 1 to ${MAX_BATCH_JOBS} jobs at once, stored all or none`,
        description:
          'Every job is validated before any is stored; an error names the index of the job refused (`jobs.3.type: ...`) and nothing is stored. ' +
          'The answer lists the jobs in request order; a job whose idempotency_key was already used (by a stored job or an earlier job of the batch) is the first job with that key, and `created` counts only the new ones.',
        body: batchBody,
        response: { 202: z.object({ jobs: z.array(jobSchema), created: z.number().describe('jobs stored by this request') }), '4xx': errorSchema },
      },
    },
    async (request, reply) => reply.status(202).send(await jobs.submitBatch(request.body.jobs)),
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        tags,
        summary: 'List jobs, newest first',
        querystring: z.strictObject({
          status: z.string().optional().describe('one status or a comma-separated list'),
          type: z.string().optional(),
          since: z.string().optional().describe('duration (1h) or RFC 3339 time (2026-12-08T09:30:00Z)'),
          cursor: z.string().optional().describe('next_cursor of the previous page'),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ jobs: z.array(jobSchema), next_cursor: z.string().nullable() }), '4xx': errorSchema },
      },
    },
    async (request) => {
      const q = request.query;
      return jobs.list({ status: parseStatuses(q.status), type: q.type, since: q.since ? parseSince(q.since) : undefined, cursor: q.cursor, limit: q.limit });
    },
  );

  app.get(
    '/v1/jobs/stats',
    {
      schema: {
        tags,
        summary: "Status distribution of jobs created since `since` (the runbook's section-B query)",
        querystring: z.strictObject({ since: z.string().default('1h') }),
        response: { 200: z.object({ since: z.string(), counts: z.record(z.string(), z.number()), total: z.number() }), '4xx': errorSchema },
      },
    },
    async (request) => jobs.stats(Date.now() - parseSince(request.query.since).getTime()),
  );

  app.get('/v1/jobs/:id', { schema: { tags, summary: 'Get a job', params: idParams, response: { 200: jobSchema, '4xx': errorSchema } } }, async (request) =>
    jobs.get(request.params.id),
  );

  // Acting on a job needs the scope of its kind (evals:write for an evaluation run's job), known
  // only once the job is read: the access hook asks for a valid key, the handler for the scope.
  const actOn = async (request: FastifyRequest<{ Params: { id: string } }>, action: 'cancel' | 'retry') => {
    const job = await jobs.get(request.params.id);
    requireScope(request, jobs.actScope(job.type), `POST /v1/jobs/:id/${action} on a job of type ${job.type}`);
  };

  app.post(
    '/v1/jobs/:id/cancel',
    {
      config: { access: 'authenticated' },
      schema: { tags, summary: 'Cancel a queued job, or ask the runner of a running one to abort it (scope jobs:write; evals:write for an evaluation job)', params: idParams, body: noBody, response: { 202: jobSchema, '4xx': errorSchema } },
    },
    async (request, reply) => {
      await actOn(request, 'cancel');
      return reply.status(202).send(await jobs.cancel(request.params.id));
    },
  );

  app.post(
    '/v1/jobs/:id/retry',
    {
      config: { access: 'authenticated' },
      schema: { tags, summary: 'Queue a failed or cancelled job again (scope jobs:write; evals:write for an evaluation job)', params: idParams, body: noBody, response: { 202: jobSchema, '4xx': errorSchema } },
    },
    async (request, reply) => {
      await actOn(request, 'retry');
      return reply.status(202).send(await jobs.retry(request.params.id));
    },
  );
};
