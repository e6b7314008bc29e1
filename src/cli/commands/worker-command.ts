import type { Command } from 'commander';
import { pino } from 'pino';
import { evaluationJobHandlers } from '../../evals/eval-services.ts';
import { startWorker, WorkerStartupError } from '../../jobs/runners/bullmq-worker-process.ts';
import { createLogger } from '../../obs/logger.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';

const whole = (name: string, min: number, max: number) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new CliError(`${name}: accepts a whole number from ${min} to ${max} (got "${value}")`, EXIT.USAGE);
  return Number(value);
};

/**
 * `evalops worker`: runs jobs from BullMQ (queue mode) until SIGTERM/SIGINT. Logs are JSON lines:
 * below `error` on stdout, `error` and `fatal` (with stacks) on stderr.
 */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run queue-mode jobs from BullMQ on REDIS_URL against DATABASE_URL, until SIGTERM/SIGINT (drains: running jobs get SHUTDOWN_GRACE_MS)')
    .option('-c, --concurrency <n>', 'jobs run at once (default JOB_CONCURRENCY)', whole('--concurrency', 1, 1000))
    .option('-t, --types <list>', 'comma-separated job types (queues) to take (default: every type this version knows)')
    .option('-n, --name <name>', 'name shown by `evalops workers ping` and in locked_by', 'worker')
    .option('--metrics-port <n>', 'port of this worker\'s /metrics (0: a free port, shown by `workers ping`)', whole('--metrics-port', 0, 65535), 0)
    .option('--metrics-host <host>', 'address /metrics listens on (default HOST)')
    .option('--no-metrics', 'serve no /metrics')
    .action(async (o: { concurrency?: number; types?: string; name: string; metricsPort: number; metricsHost?: string; metrics: boolean }) => {
      const config = configFromEnv();
      // A line per job: buffered (4 KiB) and flushed every 250 ms, so logging costs a write per batch, not per job.
      const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096 });
      const flusher = setInterval(() => stdout.flush(), 250);
      flusher.unref();
      const stderr = pino.destination({ dest: 2, sync: true });
      // dedupe: a line goes to the stream with the highest level it reaches, so errors only to stderr.
      const destination = pino.multistream(
        [
          { level: 'trace', stream: stdout },
          { level: 'error', stream: stderr },
        ],
        { dedupe: true },
      );
      const logger = createLogger({ level: config.logLevel, destination });
      const flush = () => {
        clearInterval(flusher);
        stdout.flushSync();
      };
      if (config.runnerMode !== 'queue') {
        logger.warn({ JOB_RUNNER_MODE: config.runnerMode }, 'JOB_RUNNER_MODE is not queue here: this worker runs what is in BullMQ, but an API in inprocess mode dispatches nothing to it');
      }
      let worker;
      try {
        worker = await startWorker(config, logger, {
          name: o.name,
          ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
          ...(o.types ? { types: o.types.split(',').map((t) => t.trim()).filter(Boolean) } : {}),
          metricsPort: o.metrics ? o.metricsPort : null,
          ...(o.metricsHost ? { metricsHost: o.metricsHost } : {}),
          handlers: (deps) => evaluationJobHandlers(deps),
        });
      } catch (err) {
        flush();
        if (err instanceof WorkerStartupError) throw new CliError(`refusing to start: ${err.message}`, EXIT.FAILURE);
        if (err instanceof Error && /EADDRINUSE/.test(err.message)) throw new CliError(`refusing to start: --metrics-port ${o.metricsPort} is in use (choose another, or 0 for a free one)`, EXIT.FAILURE);
        throw new CliError(`cannot start: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
      }

      // Signal handling lives here, in the entry point, and nowhere else.
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          flush();
          process.exit(EXIT.FAILURE);
        }
        stopping = true;
        logger.info({ signal, grace_ms: config.shutdownGraceMs }, 'worker shutting down: taking no new jobs');
        worker
          .close()
          .then(() => {
            logger.info('stopped');
            flush();
            process.exit(EXIT.OK);
          })
          .catch((err) => {
            logger.error({ err }, 'shutdown failed');
            flush();
            process.exit(EXIT.FAILURE);
          });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
