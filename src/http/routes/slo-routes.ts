import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { SloConfig } from '../../obs/slo-config.ts';
import type { ReadQuery } from '../../ops/read-query.ts';
import { measureSlos } from '../../ops/slo-measure.ts';
import { formatSloReports } from '../../ops/slo-report-text.ts';

export interface SloRouteDeps {
  slo: SloConfig;
  /** Read-only queries against the service's database. */
  read: ReadQuery;
}

/** `GET /v1/slo`: every SLO measured from the database now (JSON, or `?format=text` as `evalops slo` prints it). */
export const sloRoutes: FastifyPluginAsyncZod<{ deps: SloRouteDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/slo',
    {
      schema: {
        tags: ['slo'],
        summary: 'Each SLO: SLI over 5m, 30m, 1h, 6h, 3d and the full window, error budget left, burn rates, which alert would fire now',
        querystring: z.object({ format: z.enum(['json', 'text']).default('json') }),
      },
    },
    async (request, reply) => {
      const report = await measureSlos(deps.read, deps.slo);
      if (request.query.format === 'text') return reply.type('text/plain; charset=utf-8').send(formatSloReports(report.slos.map((s) => s.report)));
      return reply.send(report);
    },
  );
};
