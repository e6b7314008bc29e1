import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DatasetFormat } from '../../evals/dataset-parser.ts';
import type { DatasetService } from '../../evals/dataset-service.ts';
import { AppError } from '../../errors.ts';

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

const snapshotSchema = z.object({
  data_snapshot_id: z.string(),
  name: z.string().nullable(),
  source_format: z.string(),
  row_count: z.number(),
  byte_count: z.number(),
  created_at: z.string(),
});

/** Content types handed to the service as a raw stream (never buffered by Fastify). */
const STREAMED_TYPES: Record<string, DatasetFormat> = {
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/x-jsonlines': 'jsonl',
  'text/csv': 'csv',
};
const ACCEPTED = 'application/x-ndjson, application/jsonl or text/csv';

const idParams = z.object({ id: z.string().describe('sha256:<hex>') });

/** Dataset snapshots: streamed uploads, content-addressed ids. */
export const datasetRoutes: FastifyPluginAsyncZod<{ datasets: DatasetService; uploadLimitBytes: number }> = async (app, { datasets, uploadLimitBytes }) => {
  const tags = ['datasets'];
  // Encapsulated in this plugin: the rest of the API keeps its JSON-only parsing and body limit.
  app.addContentTypeParser(Object.keys(STREAMED_TYPES), (_request, payload, done) => done(null, payload));

  app.post(
    '/v1/datasets',
    {
      schema: {
        tags,
        summary: `Upload a dataset (${ACCEPTED}; streamed) and get its content-addressed snapshot id`,
        description:
          'Each row is {id?, vars: {...}, expected?, metadata?} (JSONL; other top-level keys become vars) or a CSV row with a header ' +
          '(id, expected, metadata columns; every other column is a var). Invalid rows are reported with their line numbers and nothing is stored. ' +
          'The same content uploaded twice gives the same data_snapshot_id (200 instead of 201).',
        querystring: z.strictObject({
          name: z.string().min(1).max(200).optional().describe('a label for the snapshot'),
          format: z.enum(['jsonl', 'csv']).optional().describe('overrides the content type'),
        }),
        response: { 200: snapshotSchema, 201: snapshotSchema, '4xx': errorSchema },
      },
    },
    async (request, reply) => {
      const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const format = request.query.format ?? STREAMED_TYPES[type];
      if (!format || !(request.body instanceof Readable)) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', `body: send the dataset file as ${ACCEPTED} (got ${type || 'no content type'})`);
      }
      const declared = Number(request.headers['content-length']);
      if (Number.isFinite(declared) && declared > uploadLimitBytes) {
        throw new AppError('PAYLOAD_TOO_LARGE', `body: ${declared} bytes is over the dataset upload limit of ${uploadLimitBytes} bytes (DATASET_UPLOAD_LIMIT_BYTES)`, { limit: uploadLimitBytes });
      }
      try {
        const { snapshot, created } = await datasets.upload(request.body, { format, name: request.query.name, limitBytes: uploadLimitBytes });
        return reply.status(created ? 201 : 200).send(snapshot);
      } catch (error) {
        // The rest of the body may never come (a stalled client): answer, then close the connection.
        if (!request.raw.complete) reply.header('connection', 'close');
        throw error;
      }
    },
  );

  app.get(
    '/v1/datasets',
    {
      schema: {
        tags,
        summary: 'Dataset snapshots, newest first',
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
        response: { 200: z.object({ datasets: z.array(snapshotSchema) }) },
      },
    },
    async (request) => ({ datasets: await datasets.list(request.query.limit) }),
  );

  app.get('/v1/datasets/:id', { schema: { tags, summary: 'One snapshot', params: idParams, response: { 200: snapshotSchema, '4xx': errorSchema } } }, async (request) =>
    datasets.get(request.params.id),
  );

  app.get(
    '/v1/datasets/:id/rows',
    {
      schema: {
        tags,
        summary: 'The snapshot as stored: canonical JSONL, one row per line; with offset or limit, only those rows (a preview reads no further)',
        params: idParams,
        querystring: z.strictObject({
          offset: z.coerce.number().int().min(0).optional().describe('rows to skip'),
          limit: z.coerce.number().int().min(1).max(10_000).optional().describe('rows to send at most'),
        }),
      },
    },
    async (request, reply) => {
      const { offset, limit } = request.query;
      const stream =
        offset === undefined && limit === undefined
          ? await datasets.openContent(request.params.id)
          : await datasets.readRows(request.params.id, { offset: offset ?? 0, limit: limit ?? 10_000 });
      return reply.type('application/x-ndjson').send(stream);
    },
  );
};
