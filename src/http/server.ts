import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config/config.ts';
import { type DatabaseHandle, openDatabase, withTimeout } from '../db/database.ts';
import { migrateUp, migrationStatus } from '../db/migrator.ts';
import { createRedisProbe, type RedisProbe } from '../db/redis-probe.ts';
import { HandlerRegistry, type JobHandler } from '../jobs/handler-registry.ts';
import { BUILTIN_HANDLERS } from '../jobs/handlers/builtin-handlers.ts';
import { createEvalServices, evaluationJobHandlers } from '../evals/eval-services.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { JobService } from '../jobs/job-service.ts';
import { backlogSummary } from '../jobs/job-store.ts';
import { createRunner, dispatcherOf } from '../jobs/runner-factory.ts';
import type { Logger } from '../obs/logger.ts';
import { Metrics } from '../obs/metrics.ts';
import { buildApp } from './app.ts';
import { startAccessControl } from './access-control.ts';
import { loadSloConfig, type SloConfig } from '../obs/slo-config.ts';
import { RequestCounter } from '../obs/request-counter.ts';
import { RequestCountFlusher } from '../obs/request-counter-flush.ts';
import { registerEvaluationRunsFinished } from '../obs/evaluation-run-metrics.ts';

/** Refusal to start, with the sentence that says how to fix it. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  database: DatabaseHandle;
  runner: JobRunner;
  /** Stops in reverse order of start: HTTP, jobs (within the grace period), Redis, database. */
  close(graceMs?: number): Promise<void>;
}

/** Where a server that holds the embedded database tells the CLI how to reach it. */
export const serverInfoPath = (dataDir: string) => path.join(dataDir, 'server.json');

export interface ServerInfo {
  url: string;
  pid: number;
  token: string;
  started_at: string;
}

/** Applies or checks migrations as MIGRATE_ON_START says. */
async function ensureMigrated(database: DatabaseHandle, config: Config, logger: Logger): Promise<void> {
  const status = await migrationStatus(database.db);
  if (status.pending.length === 0) return;
  if (!config.migrateOnStart) {
    throw new StartupError(
      `${status.pending.length} migration(s) pending (${status.pending.join(', ')}); run \`npx evalops migrate up\` first, or set MIGRATE_ON_START=true`,
    );
  }
  // A migration may run long (an index on a big table): on PostgreSQL it gets a connection of its
  // own, not bounded by DB_UNAVAILABLE_ANSWER_MS as the service's statements are.
  const migrating = database.kind === 'postgres' ? await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1, logger }) : database;
  let result: Awaited<ReturnType<typeof migrateUp>>;
  try {
    result = await migrateUp(migrating.db);
  } finally {
    if (migrating !== database) await migrating.close();
  }
  if (result.error) throw new StartupError(`migration ${result.failed ?? ''} failed: ${result.error.message}`);
  logger.info({ applied: result.applied }, 'migrations applied');
}

/** SLO_CONFIG (or the built-in defaults); a file that does not validate stops the start with its problems. */
async function loadSlos(config: Config): Promise<SloConfig> {
  try {
    return await loadSloConfig(config.slo.configPath);
  } catch (err) {
    throw new StartupError(`SLO_CONFIG: ${(err as Error).message}`);
  }
}

/** Request counts are kept for the longest SLO window plus a day. */
const requestCountRetentionSeconds = (slo: SloConfig) => Math.max(...slo.slos.map((s) => s.windowSeconds)) + 86_400;

/** What an embedding program (or a test) adds to the standard service. */
export interface ServerExtensions {
  handlers?: JobHandler[];
  routes?: FastifyPluginAsync;
}

/** Opens everything the API needs, starts the runner and listens. */
export async function startServer(config: Config, logger: Logger, extensions: ServerExtensions = {}): Promise<RunningServer> {
  const releasers: Array<() => Promise<void> | void> = [];
  const releaseAll = async () => {
    for (const release of releasers.reverse()) await Promise.resolve(release()).catch((err) => logger.error({ err }, 'error while shutting down'));
  };
  try {
    const slo = await loadSlos(config);
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize, answerMs: config.dbUnavailableAnswerMs, logger });
    releasers.push(() => database.close());
    await ensureMigrated(database, config, logger);
    // The measured availability SLI: this process's request counts, written every SLI_FLUSH_MS.
    // Its releaser runs after the app has closed, so the last requests are written too.
    const requestCounter = new RequestCounter();
    const flusher = new RequestCountFlusher({ db: database.db, counter: requestCounter, intervalMs: config.slo.flushMs, retentionSeconds: requestCountRetentionSeconds(slo), logger });
    flusher.start();
    releasers.push(() => flusher.stop(Math.max(1000, config.health.probeTimeoutMs)));
    const registry = new HandlerRegistry();
    const evalHandlers = evaluationJobHandlers({ db: database.db, config, logger });
    for (const handler of [...BUILTIN_HANDLERS, ...evalHandlers, ...(extensions.handlers ?? [])]) registry.register(handler);
    const access = await startAccessControl({ config, database, logger, jobTypes: () => registry.types() });
    releasers.push(() => access.close());
    if (access.refusal) throw new StartupError(access.refusal);

    const redis: RedisProbe | undefined = config.redisUrl ? createRedisProbe(config.redisUrl, config.health.probeTimeoutMs) : undefined;
    if (redis) releasers.push(() => redis.close());
    const metrics = new Metrics({
      queueDepth: async () => {
        // Bounded: a hung database must not hang the scrape.
        const b = await withTimeout(backlogSummary(database.db), config.health.probeTimeoutMs, 'the jobs table');
        return { queued: b.queued, running: b.running };
      },
    });
    registerEvaluationRunsFinished(metrics.registry, database.db, config.health.probeTimeoutMs);
    const runner = createRunner(config, { database, registry, logger, metrics });
    const jobs = new JobService(database.db, registry, metrics, { payloadLimitBytes: config.jobs.payloadLimitBytes, defaultMaxAttempts: config.jobs.maxAttempts, payloadLimitFor: access.limits.jobPayloadLimit }, dispatcherOf(runner));
    const evals = createEvalServices(database.db, config, jobs, access.limits);

    await runner.start();
    let graceMs = config.shutdownGraceMs;
    releasers.push(() => runner.stop(graceMs));

    // Registered after the runner so it closes first: stop accepting, then let jobs finish.
    const localToken = database.kind === 'pglite' ? randomBytes(32).toString('base64url') : undefined;
    const app = await buildApp({ config, logger, metrics, database, redis, runner, jobs, localToken, startedAt: Date.now(), evals, access, slo: { config: slo, counter: requestCounter } });
    releasers.push(() => app.close());
    if (extensions.routes) await app.register(extensions.routes);

    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

    if (localToken) {
      const file = serverInfoPath(config.dataDir);
      const info: ServerInfo = { url, pid: process.pid, token: localToken, started_at: new Date().toISOString() };
      writeFileSync(file, JSON.stringify(info, null, 2), { mode: 0o600 });
      chmodSync(file, 0o600);
      releasers.push(() => rmSync(file, { force: true }));
    }
    logger.info({ url, database: database.location, runner_mode: runner.mode }, 'evalops is listening');

    return {
      app,
      url,
      database,
      runner,
      async close(grace = config.shutdownGraceMs) {
        graceMs = grace;
        await releaseAll();
      },
    };
  } catch (err) {
    await releaseAll();
    throw err;
  }
}
