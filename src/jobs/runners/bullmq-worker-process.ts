import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Config, redactUrl } from '../../config/config.ts';
import { EVALOPS_VERSION } from '../../config/version.ts';
import type { Kysely } from 'kysely';
import { type DatabaseHandle, openDatabase } from '../../db/database.ts';
import type { Database } from '../../db/schema.ts';
import { migrationStatus } from '../../db/migrator.ts';
import type { Logger } from '../../obs/logger.ts';
import { Metrics } from '../../obs/metrics.ts';
import { HandlerRegistry, type JobHandler } from '../handler-registry.ts';
import { BUILTIN_HANDLERS } from '../handlers/builtin-handlers.ts';
import { BullmqWorkerRunner } from './bullmq-worker-runner.ts';

/** Refusal to start a worker, with the sentence that says how to fix it. */
export class WorkerStartupError extends Error {
  override name = 'WorkerStartupError';
}

export interface WorkerProcessOptions {
  /** @defaultValue `worker` */
  name?: string;
  /** @defaultValue JOB_CONCURRENCY */
  concurrency?: number;
  /** Job types to take; @defaultValue every type this process has a handler for */
  types?: string[];
  /** Port of the worker's own `/metrics`; 0 picks a free one, null turns it off. @defaultValue 0 */
  metricsPort?: number | null;
  /** @defaultValue HOST */
  metricsHost?: string;
  /**
   * Handlers besides the built-in ones: the same list the API registers (the CLI passes the evaluation
   * handlers). A function is called once the database is open.
   */
  handlers?: JobHandler[] | ((deps: { db: Kysely<Database>; config: Config; logger: Logger }) => JobHandler[]);
}

export interface RunningWorker {
  runner: BullmqWorkerRunner;
  database: DatabaseHandle;
  /** Where Prometheus scrapes this worker, or null. */
  metricsUrl: string | null;
  /** Stops in reverse order of start: jobs (within the grace period), metrics endpoint, database. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts an `evalops worker`: the jobs table on PostgreSQL, the BullMQ queues of its types on Redis,
 * and Prometheus metrics served on a port of its own (each worker is a scrape target, advertised in
 * `evalops workers ping`; counters stay per process, so restarts and rates read as Prometheus expects).
 */
export async function startWorker(config: Config, logger: Logger, options: WorkerProcessOptions = {}): Promise<RunningWorker> {
  if (!config.redisUrl) throw new WorkerStartupError('REDIS_URL is not set: a worker takes its jobs from BullMQ on that Redis');
  if (!config.databaseUrl) throw new WorkerStartupError('DATABASE_URL is not set: a worker needs the PostgreSQL database the API uses (the embedded PGlite admits one process)');
  const name = options.name ?? 'worker';
  if (!/^[\w.@-]{1,64}$/.test(name)) throw new WorkerStartupError(`--name "${name}": use 1 to 64 letters, digits, _ . @ or -`);

  const releasers: Array<() => Promise<void> | void> = [];
  const releaseAll = async () => {
    for (const release of releasers.reverse()) await Promise.resolve(release()).catch((err) => logger.error({ err }, 'error while shutting down'));
  };
  try {
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize, answerMs: config.dbUnavailableAnswerMs, logger });
    releasers.push(() => database.close());
    const status = await migrationStatus(database.db);
    if (status.pending.length) throw new WorkerStartupError(`${status.pending.length} migration(s) pending (${status.pending.join(', ')}); run \`npx evalops migrate up\` first`);

    const registry = new HandlerRegistry();
    const extra = typeof options.handlers === 'function' ? options.handlers({ db: database.db, config, logger }) : (options.handlers ?? []);
    for (const handler of [...BUILTIN_HANDLERS, ...extra]) registry.register(handler);
    const types = options.types?.length ? [...new Set(options.types)].sort() : registry.types();
    const unknown = types.filter((t) => !registry.get(t));
    if (unknown.length) throw new WorkerStartupError(`no handler for job type(s) ${unknown.join(', ')}; this version knows ${registry.types().join(', ')}`);

    const metrics = new Metrics();
    let metricsUrl: string | null = null;
    if (options.metricsPort !== null) {
      const server = await serveMetrics(metrics, options.metricsHost ?? config.host, options.metricsPort ?? 0);
      metricsUrl = server.url;
      releasers.push(() => server.close());
    }

    const runner = new BullmqWorkerRunner({
      database,
      databaseUrl: config.databaseUrl,
      registry,
      logger,
      metrics,
      redisUrl: config.redisUrl,
      prefix: config.queue.prefix,
      name,
      concurrency: options.concurrency ?? config.jobs.concurrency,
      types,
      leaseMs: config.jobs.leaseMs,
      retryBaseMs: config.jobs.retryBaseMs,
      retryMaxMs: config.jobs.retryMaxMs,
      metricsUrl,
    });
    let graceMs = config.shutdownGraceMs;
    await runner.start();
    releasers.push(() => runner.stop(graceMs));
    logger.info(
      { worker_id: runner.workerId, name, types, concurrency: runner.status().concurrency, metrics_url: metricsUrl, database: database.location, redis: redactUrl(config.redisUrl), version: EVALOPS_VERSION },
      'evalops worker is running',
    );
    return {
      runner,
      database,
      metricsUrl,
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

/** `/metrics` (Prometheus text) and `/health` on a small HTTP server of the worker's own. */
async function serveMetrics(metrics: Metrics, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        })
        .catch((err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`cannot collect metrics: ${err.message}\n`);
        });
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: this is an evalops worker; try /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
