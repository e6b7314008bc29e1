import { type Config, ConfigError, loadConfig } from '../config/config.ts';
import { createLogger, type Logger } from '../obs/logger.ts';
import { pino } from 'pino';
import { CliError, EXIT } from './exit-codes.ts';

/** Reads the environment once per command; a bad value ends the process with one line per problem. */
export function configFromEnv(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.CONFIG);
    throw err;
  }
}

/** Logs of one-shot commands go to stderr, so stdout stays the command's answer. */
export function cliLogger(config: Config): Logger {
  return createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, destination: pino.destination(2) });
}
