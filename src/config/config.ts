import path from 'node:path';
import { z } from 'zod';

/** Job runner implementations selectable with JOB_RUNNER_MODE. */
export const RUNNER_MODES = ['inprocess'] as const;
export type RunnerMode = (typeof RUNNER_MODES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const boolFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'accepts true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: `accepts a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `accepts a whole number from ${min} to ${max}` }).max(max, { message: `accepts a whole number from ${min} to ${max}` }));

const urlFromEnv = (schemes: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `accepts a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}` },
  );

/**
 * Every environment variable evalops reads. Defaults are the embedded setup: PGlite under DATA_DIR,
 * the in-process runner, loopback only.
 */
const envSchema = z.object({
  JOB_RUNNER_MODE: z.enum(RUNNER_MODES, { message: `accepts ${RUNNER_MODES.join(' or ')}` }).default('inprocess'),
  DATABASE_URL: urlFromEnv(['postgres', 'postgresql']).optional(),
  REDIS_URL: urlFromEnv(['redis', 'rediss']).optional(),
  DATA_DIR: z.string().min(1).default('./.evalops'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: intFromEnv(0, 65535).default(8000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `accepts ${LOG_LEVELS.join(', ')}` }).default('info'),
  COMMIT_SHA: z.string().regex(/^[0-9a-zA-Z._-]{1,64}$/, { message: 'accepts a git commit id' }).optional(),
  MIGRATE_ON_START: boolFromEnv.optional(),
  DATABASE_POOL_SIZE: intFromEnv(1, 200).default(10),
  /** Concurrency of the in-process runner: jobs run at once by one API process. */
  JOB_CONCURRENCY: intFromEnv(1, 1000).default(10),
  /** A job whose lease is not renewed for this long is taken back: short, so a crash recovers quickly. */
  JOB_LEASE_MS: intFromEnv(1000, 3_600_000).default(15_000),
  /** How often idle runners look for due jobs; LISTEN/NOTIFY wakes them sooner on PostgreSQL. */
  JOB_POLL_MS: intFromEnv(10, 60_000).default(1000),
  JOB_RETRY_BASE_MS: intFromEnv(0, 3_600_000).default(1000),
  JOB_RETRY_MAX_MS: intFromEnv(0, 86_400_000).default(300_000),
  JOB_MAX_ATTEMPTS: intFromEnv(1, 100).default(3),
  /** The most bytes a job payload may take as JSON. */
  JOB_PAYLOAD_LIMIT_BYTES: intFromEnv(2, 64 * 1024 * 1024).default(256 * 1024),
  /** Request bodies larger than this are refused with 413. */
  BODY_LIMIT_BYTES: intFromEnv(1024, 512 * 1024 * 1024).default(1024 * 1024),
  SHUTDOWN_GRACE_MS: intFromEnv(0, 3_600_000).default(10_000),
  HEALTH_PROBE_TIMEOUT_MS: intFromEnv(50, 60_000).default(1500),
  /** A queued job older than this makes background_tasks degraded. */
  HEALTH_QUEUE_AGE_DEGRADED_MS: intFromEnv(1000, 86_400_000).default(300_000),
});

/** Resolved, frozen configuration used by the code. */
export interface Config {
  readonly runnerMode: RunnerMode;
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly commitSha: string | undefined;
  readonly migrateOnStart: boolean;
  readonly databasePoolSize: number;
  readonly jobs: {
    readonly concurrency: number;
    readonly leaseMs: number;
    readonly pollMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly maxAttempts: number;
    readonly payloadLimitBytes: number;
  };
  readonly bodyLimitBytes: number;
  readonly shutdownGraceMs: number;
  readonly health: { readonly probeTimeoutMs: number; readonly queueAgeDegradedMs: number };
}

/** Thrown when the environment is invalid; `problems` has one line per variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once into a frozen Config, or throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in most twelve-factor tools.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const shown = name in cleaned ? ` (got ${JSON.stringify(redactUrl(cleaned[name]!))})` : '';
      return `${name}: ${issue.message}${shown}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.JOB_RETRY_MAX_MS < e.JOB_RETRY_BASE_MS) problems.push('JOB_RETRY_MAX_MS: must be at least JOB_RETRY_BASE_MS');
  if (problems.length) throw new ConfigError(problems);

  return Object.freeze({
    runnerMode: e.JOB_RUNNER_MODE,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    dataDir: path.resolve(e.DATA_DIR),
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    commitSha: e.COMMIT_SHA,
    // Embedded: one process owns the database, so migrating on start is safe and expected.
    migrateOnStart: e.MIGRATE_ON_START ?? !e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    jobs: Object.freeze({
      concurrency: e.JOB_CONCURRENCY,
      leaseMs: e.JOB_LEASE_MS,
      pollMs: e.JOB_POLL_MS,
      retryBaseMs: e.JOB_RETRY_BASE_MS,
      retryMaxMs: e.JOB_RETRY_MAX_MS,
      maxAttempts: e.JOB_MAX_ATTEMPTS,
      payloadLimitBytes: e.JOB_PAYLOAD_LIMIT_BYTES,
    }),
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    health: Object.freeze({ probeTimeoutMs: e.HEALTH_PROBE_TIMEOUT_MS, queueAgeDegradedMs: e.HEALTH_QUEUE_AGE_DEGRADED_MS }),
  });
}

/** Masks the password (and a bare token in the user part) of a URL; non-URLs pass through. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    else if (url.username && /^(rediss?):$/.test(url.protocol)) url.username = '***';
    return url.toString();
  } catch {
    return value;
  }
}

/** The effective configuration as printable key/value pairs, secrets masked. */
export function describeConfig(config: Config): Record<string, string | number | boolean | null> {
  return {
    JOB_RUNNER_MODE: config.runnerMode,
    DATABASE_URL: config.databaseUrl ? redactUrl(config.databaseUrl) : null,
    database: config.databaseUrl ? 'postgresql' : `pglite (embedded, ${path.join(config.dataDir, 'pglite')})`,
    REDIS_URL: config.redisUrl ? redactUrl(config.redisUrl) : null,
    DATA_DIR: config.dataDir,
    HOST: config.host,
    PORT: config.port,
    LOG_LEVEL: config.logLevel,
    COMMIT_SHA: config.commitSha ?? null,
    MIGRATE_ON_START: config.migrateOnStart,
    DATABASE_POOL_SIZE: config.databasePoolSize,
    JOB_CONCURRENCY: config.jobs.concurrency,
    JOB_LEASE_MS: config.jobs.leaseMs,
    JOB_POLL_MS: config.jobs.pollMs,
    JOB_RETRY_BASE_MS: config.jobs.retryBaseMs,
    JOB_RETRY_MAX_MS: config.jobs.retryMaxMs,
    JOB_MAX_ATTEMPTS: config.jobs.maxAttempts,
    JOB_PAYLOAD_LIMIT_BYTES: config.jobs.payloadLimitBytes,
    BODY_LIMIT_BYTES: config.bodyLimitBytes,
    SHUTDOWN_GRACE_MS: config.shutdownGraceMs,
    HEALTH_PROBE_TIMEOUT_MS: config.health.probeTimeoutMs,
    HEALTH_QUEUE_AGE_DEGRADED_MS: config.health.queueAgeDegradedMs,
  };
}
