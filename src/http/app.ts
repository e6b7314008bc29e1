import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../config/config.ts';
import { EVALOPS_VERSION } from '../config/version.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { RedisProbe } from '../db/redis-probe.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import { registerErrorHandling } from './error-handler.ts';
import { registerRequestObserver } from './request-observer.ts';
import { healthRoutes } from './routes/health-routes.ts';
import { jobRoutes } from './routes/job-routes.ts';
import { localAdminRoutes } from './routes/local-admin-routes.ts';
import { metricsRoutes } from './routes/metrics-routes.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  redis: RedisProbe | undefined;
  runner: JobRunner;
  jobs: JobService;
  /** Enables the CLI's local admin routes (embedded database only). */
  localToken?: string | undefined;
  startedAt: number;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Builds the Fastify app; listening and shutdown belong to the caller. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One access line per request is written by the request observer instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // Trust a well-formed X-Request-Id from a proxy, otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: deps.config.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerRequestObserver(app, deps.metrics);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'evalops', version: EVALOPS_VERSION, description: 'Background jobs and reproducible LLM evaluations, operated by a runbook.' },
      tags: [{ name: 'health' }, { name: 'jobs' }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, { deps: { config: deps.config, database: deps.database, redis: deps.redis, runner: deps.runner, startedAt: deps.startedAt } });
  await app.register(metricsRoutes, { metrics: deps.metrics });
  await app.register(jobRoutes, { jobs: deps.jobs });
  if (deps.localToken) await app.register(localAdminRoutes, { database: deps.database, token: deps.localToken });
  return app;
}
