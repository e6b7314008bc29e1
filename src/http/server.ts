import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config/config.ts';
import { type DatabaseHandle, openDatabase } from '../db/database.ts';
import { migrateUp, migrationStatus } from '../db/migrator.ts';
import { createRedisProbe, type RedisProbe } from '../db/redis-probe.ts';
import { HandlerRegistry, type JobHandler } from '../jobs/handler-registry.ts';
import { BUILTIN_HANDLERS } from '../jobs/handlers/builtin-handlers.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { JobService } from '../jobs/job-service.ts';
import { backlogSummary } from '../jobs/job-store.ts';
import { createRunner } from '../jobs/runner-factory.ts';
import type { Logger } from '../obs/logger.ts';
import { Metrics } from '../obs/metrics.ts';
import { buildApp } from './app.ts';

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
  const result = await migrateUp(database.db);
  if (result.error) throw new StartupError(`migration ${result.failed ?? ''} failed: ${result.error.message}`);
  logger.info({ applied: result.applied }, 'migrations applied');
}

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
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize, logger });
    releasers.push(() => database.close());
    await ensureMigrated(database, config, logger);

    const redis: RedisProbe | undefined = config.redisUrl ? createRedisProbe(config.redisUrl) : undefined;
    if (redis) releasers.push(() => redis.close());

    const registry = new HandlerRegistry();
    for (const handler of [...BUILTIN_HANDLERS, ...(extensions.handlers ?? [])]) registry.register(handler);
    const metrics = new Metrics({
      queueDepth: async () => {
        const b = await backlogSummary(database.db);
        return { queued: b.queued, running: b.running };
      },
    });
    const jobs = new JobService(database.db, registry, metrics, { payloadLimitBytes: config.jobs.payloadLimitBytes, defaultMaxAttempts: config.jobs.maxAttempts });
    const runner = createRunner(config, { database, registry, logger, metrics });

    await runner.start();
    let graceMs = config.shutdownGraceMs;
    releasers.push(() => runner.stop(graceMs));

    // Registered after the runner so it closes first: stop accepting, then let jobs finish.
    const localToken = database.kind === 'pglite' ? randomBytes(32).toString('base64url') : undefined;
    const app = await buildApp({ config, logger, metrics, database, redis, runner, jobs, localToken, startedAt: Date.now() });
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
