import { pino, type Logger, type DestinationStream } from 'pino';

/** Field paths whose values never reach a log line, whatever logs them. */
const REDACT = [
  'password', '*.password', 'token', '*.token', 'apiKey', '*.apiKey', 'api_key', '*.api_key',
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
];

/** JSON-lines logger: one object per line on stdout (or `destination`), secrets redacted. */
export function createLogger(options: { level: string; name?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      ...(options.name ? { name: options.name } : {}),
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

export type { Logger };
