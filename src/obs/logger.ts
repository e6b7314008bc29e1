import { pino, type Bindings, type ChildLoggerOptions, type Logger, type DestinationStream } from 'pino';

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

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** What a request's logger offers: pino's log methods, its level, and children of its own. */
export interface ChildLogger extends Pick<Logger, LogMethod | 'silent' | 'level' | 'isLevelEnabled'> {
  child(bindings: Bindings, options?: ChildLoggerOptions): Logger;
}

/**
 * A child of `parent` with `bindings` (a request's id) that becomes a real pino child only when a
 * line is written through it at an enabled level. Fastify makes one child per request, and pino's
 * child() serialises the bindings through the redaction paths: a few microseconds, as much as all
 * the rest of a /health answer, spent on every request although most write nothing through it
 * (their access line is written by the request observer, request_id included). Lines written
 * through it are the same as through the child it stands for.
 */
export function lazyChildLogger(parent: Logger, bindings: Bindings, options?: ChildLoggerOptions): ChildLogger {
  // Per-route levels or serializers change what the child writes: make it at once, as pino would.
  if (options && (options.level !== undefined || options.serializers !== undefined)) return parent.child(bindings, options);
  return new LazyChildLogger(parent, bindings);
}

class LazyChildLogger implements ChildLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #real(): Logger {
    return (this.#child ??= this.#parent.child(this.#bindings));
  }

  #write(level: LogMethod, args: unknown[]): void {
    // Until it exists, the child's level is its parent's: a disabled line makes no child.
    if (this.#child === undefined && !this.#parent.isLevelEnabled(level)) return;
    const real = this.#real();
    (real[level] as (...a: unknown[]) => void).apply(real, args);
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#real().child(bindings, options);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#write('error', args);
  }

  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }

  info(...args: unknown[]): void {
    this.#write('info', args);
  }

  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }

  silent(): void {}
}

export type { Logger };
