import type { Command } from 'commander';
import { pino } from 'pino';
import { DataDirLockedError } from '../../db/data-dir-lock.ts';
import { StartupError, startServer } from '../../http/server.ts';
import { createLogger } from '../../obs/logger.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';

/** `evalops serve`: the API (and, in inprocess mode, the job runner) until SIGTERM or SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP API (and the in-process job runner) until SIGTERM/SIGINT')
    .action(async () => {
      const config = configFromEnv();
      // Asynchronous writes keep logging off the request path; flushed at exit.
      // Lines are written in batches of 4 KiB, and at least every 250 ms so a quiet server's lines
      // still show promptly: one write per line cost more CPU than the request it described.
      const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
      const flushTimer = setInterval(() => {
        try {
          destination.flush();
        } catch {
          /* a write is still opening the stream; the next tick flushes */
        }
      }, 250);
      flushTimer.unref();
      const logger = createLogger({ level: config.logLevel, destination });
      let server;
      try {
        server = await startServer(config, logger);
      } catch (err) {
        destination.flushSync();
        if (err instanceof StartupError) throw new CliError(`refusing to start: ${err.message}`, EXIT.FAILURE);
        if (err instanceof DataDirLockedError) throw new CliError(`refusing to start: ${err.message}; is another evalops server running?`, EXIT.FAILURE);
        if (err instanceof Error && /EADDRINUSE/.test(err.message)) throw new CliError(`refusing to start: ${config.host}:${config.port} is in use (set PORT)`, EXIT.FAILURE);
        throw new CliError(`cannot start: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
      }
      if (!config.databaseUrl) {
        logger.warn('embedded PGlite database: PGlite does not fsync, so a machine crash (not a process crash) can lose recent writes; use DATABASE_URL with PostgreSQL in production');
      }

      // Signal handling lives here, in the entry point, and nowhere else.
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          destination.flushSync();
          process.exit(EXIT.FAILURE);
        }
        stopping = true;
        logger.info({ signal, grace_ms: config.shutdownGraceMs }, 'shutting down');
        server
          .close()
          .then(() => {
            logger.info('stopped');
            destination.flushSync();
            process.exit(EXIT.OK);
          })
          .catch((err) => {
            logger.error({ err }, 'shutdown failed');
            destination.flushSync();
            process.exit(EXIT.FAILURE);
          });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
