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
import { lazyChildLogger, type Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import { clientErrorHandler, frameworkErrorHandler, registerClosingAnswer, registerErrorHandling, registerNotFound } from './error-handler.ts';
import { registerRequestObserver } from './request-observer.ts';
import type { SloConfig } from '../obs/slo-config.ts';
import type { RequestCounter } from '../obs/request-counter.ts';
import { IncidentService } from '../ops/incident-service.ts';
import { sloRoutes } from './routes/slo-routes.ts';
import { localIncidentRoutes } from './routes/incident-local-routes.ts';
import { healthRoutes } from './routes/health-routes.ts';
import { jobRoutes } from './routes/job-routes.ts';
import { localAdminRoutes } from './routes/local-admin-routes.ts';
import { metricsRoutes } from './routes/metrics-routes.ts';
import type { EvalServices } from '../evals/eval-services.ts';
import { datasetRoutes } from './routes/dataset-routes.ts';
import { evaluationRoutes } from './routes/evaluation-routes.ts';
import { promptRoutes } from './routes/prompt-routes.ts';
import type { AccessControl } from './access-control.ts';
import { registerAuth, requestActor } from './auth.ts';
import { accessAdminRoutes, localAccessRoutes } from './routes/admin-routes.ts';
import { registerLoadShedding, registerSecurity } from './security.ts';
import { dashboardRoutes } from '../web/dashboard.ts';
import { hasScope } from '../ops/api-key-service.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  redis: RedisProbe | undefined;
  runner: JobRunner;
  jobs: JobService;
  /** Prompts, datasets and evaluation runs; their routes are registered when given. */
  evals?: EvalServices | undefined;
  /** Enables the CLI's local admin routes (embedded database only). */
  localToken?: string | undefined;
  /** API keys, runtime limits, rate-limit store (src/http/access-control.ts). */
  access: AccessControl;
  startedAt: number;
  /** SLO definitions and this process's request counter (the measured availability SLI): GET /v1/slo, incidents. */
  slo?: { config: SloConfig; counter: RequestCounter } | undefined;
}

/** Bound on the SLO and incident figures' queries (they scan up to the SLO's 28 days). */
const SLO_QUERY_TIMEOUT_MS = 15_000;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** A hop count means: trust that many proxies nearest to us (Fastify's types take it as a function). */
const trustProxyOption = (value: boolean | number | string[]) => (typeof value === 'number' ? (_address: string, hop: number) => hop < value : value);

/** Builds the Fastify app; listening and shutdown belong to the caller. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One access line per request is written by the request observer instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // request.log is made a pino child (bound to request_id) only when something logs through it.
    childLoggerFactory: (logger, bindings, options) => lazyChildLogger(logger as Logger, bindings, options) as FastifyBaseLogger,
    // Trust a well-formed X-Request-Id from a proxy, otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: trustProxyOption(deps.config.access.trustProxy),
    // Requests during close get the documented 503 from registerClosingAnswer.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerClosingAnswer(app);
  // JSON is the API's one body type (datasets add their streamed types in their own context):
  // text/plain is a 415 like any other type, not a string the schemas refuse with a 400.
  app.removeContentTypeParser('text/plain');
  // Before any route: they see every route as it is registered (its metric series and log level,
  // access rule, input checks).
  const observer = registerRequestObserver(app, { metrics: deps.metrics, logger: deps.logger, counter: deps.slo?.counter });
  await registerSecurity(app, { config: deps.config, limits: deps.access.limits });
  const auth = await registerAuth(app, { config: deps.config, logger: deps.logger, keys: deps.access.keys, limits: deps.access.limits, redis: deps.access.rateLimitRedis });
  await registerNotFound(app, { onRequest: auth.unmatched, onResponse: observer.unmatched });

  await app.register(swagger, {
    openapi: {
      info: { title: 'evalops', version: EVALOPS_VERSION, description: 'Background jobs and reproducible LLM evaluations, operated by a runbook.' },
      tags: [{ name: 'health' }, { name: 'jobs' }, { name: 'prompts' }, { name: 'datasets' }, { name: 'evaluations' }, { name: 'admin' }],
    },
    transform: jsonSchemaTransform,
  });

  // Routes that keep answering under load: load balancers, Prometheus and the operator's CLI need them most then.
  await app.register(healthRoutes, {
    deps: { config: deps.config, database: deps.database, redis: deps.redis, runner: deps.runner, startedAt: deps.startedAt },
    mayReadLocations: async (authorization) => {
      const token = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
      if (token === undefined) return false;
      const check = await deps.access.keys.check(token);
      return check.ok && hasScope(check.key.scopes, 'read');
    },
  });
  await app.register(metricsRoutes, { metrics: deps.metrics });
  if (deps.localToken) {
    await app.register(localAdminRoutes, { database: deps.database, token: deps.localToken });
    await app.register(localAccessRoutes, { prefix: '/local', admin: deps.access.admin, token: deps.localToken });
  }
  const read = (text: string) => deps.database.readOnlyQuery(text, SLO_QUERY_TIMEOUT_MS);
  if (deps.slo && deps.localToken) {
    await app.register(localIncidentRoutes, { incidents: new IncidentService({ db: deps.database.db, read, slo: deps.slo.config }), token: deps.localToken });
  }

  // The rest of the API, the docs and the dashboard: shed with a 503 while the process is overloaded.
  await app.register(async (api) => {
    await registerLoadShedding(api, deps.config);
    await api.register(swaggerUi, { routePrefix: '/docs' });
    await api.register(jobRoutes, { jobs: deps.jobs });
    if (deps.evals) {
      await api.register(promptRoutes, { prompts: deps.evals.prompts });
      await api.register(datasetRoutes, { datasets: deps.evals.datasets, uploadLimitBytes: deps.evals.uploadLimitBytes });
      await api.register(evaluationRoutes, { evaluations: deps.evals.evaluations });
    }
    await api.register(accessAdminRoutes, { prefix: '/v1/admin', admin: deps.access.admin, actorOf: requestActor });
    if (deps.slo) await api.register(sloRoutes, { deps: { slo: deps.slo.config, read } });
    await api.register(dashboardRoutes);
  });
  return app;
}
