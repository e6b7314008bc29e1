import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseDuration } from '../../config/duration.ts';
import { validation } from '../../errors.ts';
import type { SloConfig } from '../../obs/slo-config.ts';
import type { ReadQuery } from '../../ops/read-query.ts';
import { measureRequestSeries, planRequestSeries } from '../../ops/request-series.ts';
import { measureSlos } from '../../ops/slo-measure.ts';
import { formatSloReports } from '../../ops/slo-report-text.ts';

export interface SloRouteDeps {
  slo: SloConfig;
  /** Read-only queries against the service's database. */
  read: ReadQuery;
}

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), error_id: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

const bucketSchema = z.object({
  time: z.string().describe('start of the bucket (ISO 8601)'),
  requests: z.number(),
  errors_5xx: z.number(),
  error_ratio: z.number().nullable().describe('errors_5xx / requests; null without requests'),
});

const requestSeriesSchema = z.object({
  since: z.string().describe('start of the first bucket'),
  until: z.string().describe("when it was measured, by the database's clock"),
  step_seconds: z.number(),
  totals: z.object({ requests: z.number(), errors_5xx: z.number(), error_ratio: z.number().nullable() }),
  buckets: z.array(bucketSchema),
});

/** A duration query parameter (`6h`, `5m`) in milliseconds, or a 400 naming it. */
function durationParam(field: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw validation(`${field}: "${value}" is not a duration like 6h, 30m or 1d`, { field });
  return ms;
}

/**
 * `GET /v1/slo`: every SLO measured from the database now (JSON, or `?format=text` as `evalops slo` prints it).
 * `GET /v1/slo/requests`: requests and 5xx answers over time, the availability SLI's raw counts.
 */
export const sloRoutes: FastifyPluginAsyncZod<{ deps: SloRouteDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/slo',
    {
      schema: {
        tags: ['slo'],
        summary: 'Each SLO: SLI over 5m, 30m, 1h, 6h, 3d and the full window, error budget left, burn rates, which alert would fire now',
        querystring: z.strictObject({ format: z.enum(['json', 'text']).default('json') }),
      },
    },
    async (request, reply) => {
      const report = await measureSlos(deps.read, deps.slo);
      if (request.query.format === 'text') return reply.type('text/plain; charset=utf-8').send(formatSloReports(report.slos.map((s) => s.report)));
      return reply.send(report);
    },
  );

  app.get(
    '/v1/slo/requests',
    {
      schema: {
        tags: ['slo'],
        summary: 'Requests and 5xx answers per time bucket over the last `since`, from the per-minute request counts every API process writes (every SLI_FLUSH_MS)',
        querystring: z.strictObject({
          since: z.string().max(40).default('1h').describe('window: a duration such as 1h, 6h or 7d (at most 29d)'),
          step: z.string().max(40).optional().describe('bucket size in whole minutes (1m, 5m, 1h); by default the smallest that keeps at most 360 buckets'),
        }),
        response: { 200: requestSeriesSchema, '4xx': errorSchema },
      },
    },
    async (request) => {
      const { since, step } = request.query;
      const plan = planRequestSeries(durationParam('since', since), step === undefined ? undefined : durationParam('step', step));
      return measureRequestSeries(deps.read, plan);
    },
  );
};
