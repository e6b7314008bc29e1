import path from 'node:path';
import { z } from 'zod';
import { type EnvPattern, type HostEntry, parseEnvAllowlist, parseHostAllowlist } from './provider-allowlists.ts';
import { isLoopbackHost } from './loopback-host.ts';
import { redactUrl } from './url-redaction.ts';

export { redactUrl };

/** Job runner implementations selectable with JOB_RUNNER_MODE. */
export const RUNNER_MODES = ['inprocess', 'queue'] as const;
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

/** A comma-separated list parsed by `parse`, which returns the entries or the sentence saying what is wrong. */
const listFromEnv = <T>(parse: (text: string) => T[] | string) =>
  z.string().transform((text, ctx) => {
    const parsed = parse(text);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

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
  /**
   * During a database outage every request is answered within this many milliseconds (503
   * UNAVAILABLE): it bounds connecting, waiting for a pooled connection and each statement.
   */
  DB_UNAVAILABLE_ANSWER_MS: intFromEnv(200, 600_000).default(2000),
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
  /** MLflow tracking server; finished evaluation runs are published there when set. */
  MLFLOW_TRACKING_URI: urlFromEnv(['http', 'https']).optional(),
  MLFLOW_TRACKING_TOKEN: z.string().optional(),
  MLFLOW_TRACKING_USERNAME: z.string().optional(),
  MLFLOW_TRACKING_PASSWORD: z.string().optional(),
  MLFLOW_EXPERIMENT_NAME: z.string().min(1).max(500).default('evalops'),
  /** Largest dataset upload; uploads stream to disk, so this bounds disk use, not memory. */
  DATASET_UPLOAD_LIMIT_BYTES: intFromEnv(1024, 64 * 1024 ** 3).default(1024 ** 3),
  /** An upload from which no byte arrived for this long is refused and its temp file deleted (a client that stalls holds a descriptor). */
  DATASET_UPLOAD_IDLE_MS: intFromEnv(100, 3_600_000).default(30_000),
  /** An evaluation run still going after this long is aborted and fails. */
  EVAL_RUN_TIMEOUT_MS: intFromEnv(1000, 7 * 86_400_000).default(86_400_000),
  /** Queue mode: prefix of every Redis key of the BullMQ queues and the worker registry (one per deployment). */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'accepts 1 to 64 letters, digits, _ . or -' }).default('evalops'),
  /** Queue mode: how often the API checks that BullMQ holds every queued row, and re-enqueues those it lacks. */
  QUEUE_RECONCILE_MS: intFromEnv(100, 600_000).default(5000),
  /** Access control (src/http/auth.ts): serve without API keys even beyond loopback. Explicit on purpose. */
  AUTH_DISABLED: boolFromEnv.default(false),
  /** How long a process trusts its cached view of a key when a change notification was lost (NOTIFY makes changes immediate). */
  AUTH_CACHE_TTL_MS: intFromEnv(0, 60_000).default(2000),
  /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, { message: 'accepts a token of at least 16 characters' }).max(512).optional(),
  /** Origins allowed to call the API from a browser; unset means no CORS headers at all. */
  CORS_ORIGINS: z
    .string()
    .refine((v) => v.split(',').every((o) => o.trim() === '*' || /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o.trim())), {
      message: 'accepts * or a comma-separated list of origins like https://app.example.com',
    })
    .optional(),
  /** Behind a reverse proxy: whose X-Forwarded-For to believe, so per-IP limits see the real client. */
  TRUST_PROXY: z
    .string()
    .refine((v) => /^(true|false|\d{1,2})$/.test(v) || v.split(',').every((a) => /^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(a.trim())), {
      message: 'accepts true, false, a number of proxy hops, or a comma-separated list of proxy addresses/CIDRs',
    })
    .optional(),
  /** Default budgets per key (per IP when anonymous) per minute; `evalops limits set` overrides them at runtime. 0 = unlimited. */
  RATE_LIMIT_READ_PER_MINUTE: intFromEnv(0, 1_000_000_000).default(3000),
  RATE_LIMIT_WRITE_PER_MINUTE: intFromEnv(0, 1_000_000_000).default(600),
  /** Fallback poll of the runtime limits table (NOTIFY makes changes immediate). */
  LIMITS_REFRESH_MS: intFromEnv(100, 600_000).default(5000),
  /** Most cases (after sampling) one evaluation run may have; 0 = unlimited. */
  EVAL_MAX_CASES_PER_RUN: intFromEnv(0, 1_000_000_000).default(100_000),
  /** Most evaluation runs queued or running at once; 0 = unlimited. */
  EVAL_MAX_CONCURRENT_RUNS: intFromEnv(0, 100_000).default(10),
  /** Load shedding: answer 503 when the event loop lags more than this (ms, mean over a second); 0 = off. */
  LOAD_SHED_EVENT_LOOP_DELAY_MS: intFromEnv(0, 60_000).default(2000),
  /** Load shedding: answer 503 when the V8 heap is above this percentage of its limit; 0 = off. */
  LOAD_SHED_HEAP_PERCENT: intFromEnv(0, 100).default(95),
  /** slo.yaml read by `evalops slo`, `GET /v1/slo`, `evalops slo rules` and `evalops doctor`; unset = the built-in defaults. */
  SLO_CONFIG: z.string().min(1).optional(),
  /** How often each API process writes its per-minute request counts (the availability SLI) to the database. */
  SLI_FLUSH_MS: intFromEnv(100, 60_000).default(10_000),
  /** Environment variables a provider may read (api_key_env, {{env.NAME}}); unset: *_API_KEY and *_TOKEN. evalops' own are never readable. */
  PROVIDER_ENV_ALLOWLIST: listFromEnv(parseEnvAllowlist).optional(),
  /** Hosts a provider may call; unset: any host while HOST is loopback, none beyond it. */
  PROVIDER_ALLOWED_HOSTS: listFromEnv(parseHostAllowlist).optional(),
});

/** Variables whose values are never echoed, not even in a configuration error. */
const SECRET_VARIABLES = new Set(['METRICS_TOKEN', 'MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD']);

/** Every variable name loadConfig reads (docs/configuration.md lists each; a test keeps them in step). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

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
  /** DB_UNAVAILABLE_ANSWER_MS: the longest any wait on PostgreSQL or Redis may keep a request. */
  readonly dbUnavailableAnswerMs: number;
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
  /** Queue mode (BullMQ on REDIS_URL). */
  readonly queue: { readonly prefix: string; readonly reconcileMs: number };
  readonly evals: { readonly datasetUploadLimitBytes: number; readonly datasetUploadIdleMs: number; readonly runTimeoutMs: number };
  /** Undefined when MLFLOW_TRACKING_URI is unset (runs are not published). */
  readonly mlflow:
    | { readonly trackingUri: string; readonly token: string | undefined; readonly username: string | undefined; readonly password: string | undefined; readonly experimentName: string }
    | undefined;
  /** API keys, /metrics token, CORS (src/http/auth.ts, src/http/security.ts). */
  readonly access: {
    readonly authDisabled: boolean;
    readonly authCacheTtlMs: number;
    readonly metricsToken: string | undefined;
    /** Undefined: CORS off. */
    readonly corsOrigins: readonly string[] | undefined;
    /** Fastify's trustProxy: false (the socket's address is the client), true, a hop count or proxy addresses. */
    readonly trustProxy: boolean | number | string[];
  };
  /** Defaults of the runtime limits (src/ops/runtime-limits.ts); the runtime_limits table overrides them. */
  readonly limits: {
    readonly readPerMinute: number;
    readonly writePerMinute: number;
    readonly refreshMs: number;
    readonly evalMaxCasesPerRun: number;
    readonly evalMaxConcurrentRuns: number;
  };
  readonly loadShedding: { readonly eventLoopDelayMs: number; readonly heapPercent: number };
  /** SLOs (src/obs/slo-config.ts) and the measured availability SLI (src/obs/request-counter.ts). */
  readonly slo: { readonly configPath: string | undefined; readonly flushMs: number };
  /** What evaluation providers may read and call (src/evals/providers/provider-policy.ts); undefined: the default. */
  readonly providers: { readonly envAllowlist: readonly EnvPattern[] | undefined; readonly allowedHosts: readonly HostEntry[] | undefined };
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
      const shown = name in cleaned && !SECRET_VARIABLES.has(name) ? ` (got ${JSON.stringify(redactUrl(cleaned[name]!))})` : '';
      return `${name}: ${issue.message}${shown}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.JOB_RETRY_MAX_MS < e.JOB_RETRY_BASE_MS) problems.push('JOB_RETRY_MAX_MS: must be at least JOB_RETRY_BASE_MS');
  if (e.JOB_RUNNER_MODE === 'queue' && !e.REDIS_URL) problems.push('REDIS_URL: required when JOB_RUNNER_MODE=queue (the Redis that carries jobs to `evalops worker` processes)');
  if (e.JOB_RUNNER_MODE === 'queue' && !e.DATABASE_URL) problems.push('DATABASE_URL: required when JOB_RUNNER_MODE=queue (a PostgreSQL URL: the embedded PGlite admits one process, so workers could not share it)');
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
    dbUnavailableAnswerMs: e.DB_UNAVAILABLE_ANSWER_MS,
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
    queue: Object.freeze({ prefix: e.QUEUE_PREFIX, reconcileMs: e.QUEUE_RECONCILE_MS }),
    evals: Object.freeze({ datasetUploadLimitBytes: e.DATASET_UPLOAD_LIMIT_BYTES, datasetUploadIdleMs: e.DATASET_UPLOAD_IDLE_MS, runTimeoutMs: e.EVAL_RUN_TIMEOUT_MS }),
    mlflow: e.MLFLOW_TRACKING_URI
      ? Object.freeze({
          trackingUri: e.MLFLOW_TRACKING_URI,
          token: e.MLFLOW_TRACKING_TOKEN,
          username: e.MLFLOW_TRACKING_USERNAME,
          password: e.MLFLOW_TRACKING_PASSWORD,
          experimentName: e.MLFLOW_EXPERIMENT_NAME,
        })
      : undefined,
    access: Object.freeze({
      authDisabled: e.AUTH_DISABLED,
      authCacheTtlMs: e.AUTH_CACHE_TTL_MS,
      metricsToken: e.METRICS_TOKEN,
      corsOrigins: e.CORS_ORIGINS ? Object.freeze(e.CORS_ORIGINS.split(',').map((o) => o.trim())) : undefined,
      trustProxy: parseTrustProxy(e.TRUST_PROXY),
    }),
    limits: Object.freeze({
      readPerMinute: e.RATE_LIMIT_READ_PER_MINUTE,
      writePerMinute: e.RATE_LIMIT_WRITE_PER_MINUTE,
      refreshMs: e.LIMITS_REFRESH_MS,
      evalMaxCasesPerRun: e.EVAL_MAX_CASES_PER_RUN,
      evalMaxConcurrentRuns: e.EVAL_MAX_CONCURRENT_RUNS,
    }),
    loadShedding: Object.freeze({ eventLoopDelayMs: e.LOAD_SHED_EVENT_LOOP_DELAY_MS, heapPercent: e.LOAD_SHED_HEAP_PERCENT }),
    slo: Object.freeze({ configPath: e.SLO_CONFIG ? path.resolve(e.SLO_CONFIG) : undefined, flushMs: e.SLI_FLUSH_MS }),
    providers: Object.freeze({
      envAllowlist: e.PROVIDER_ENV_ALLOWLIST ? Object.freeze(e.PROVIDER_ENV_ALLOWLIST) : undefined,
      allowedHosts: e.PROVIDER_ALLOWED_HOSTS ? Object.freeze(e.PROVIDER_ALLOWED_HOSTS) : undefined,
    }),
  });
}

function parseTrustProxy(value: string | undefined): boolean | number | string[] {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value.split(',').map((a) => a.trim());
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
    DB_UNAVAILABLE_ANSWER_MS: config.dbUnavailableAnswerMs,
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
    MLFLOW_TRACKING_URI: config.mlflow ? redactUrl(config.mlflow.trackingUri) : null,
    MLFLOW_TRACKING_TOKEN: config.mlflow?.token ? '***' : null,
    MLFLOW_TRACKING_USERNAME: config.mlflow?.username ?? null,
    MLFLOW_TRACKING_PASSWORD: config.mlflow?.password ? '***' : null,
    MLFLOW_EXPERIMENT_NAME: config.mlflow?.experimentName ?? null,
    DATASET_UPLOAD_LIMIT_BYTES: config.evals.datasetUploadLimitBytes,
    DATASET_UPLOAD_IDLE_MS: config.evals.datasetUploadIdleMs,
    EVAL_RUN_TIMEOUT_MS: config.evals.runTimeoutMs,
    QUEUE_PREFIX: config.queue.prefix,
    QUEUE_RECONCILE_MS: config.queue.reconcileMs,
    AUTH_DISABLED: config.access.authDisabled,
    AUTH_CACHE_TTL_MS: config.access.authCacheTtlMs,
    METRICS_TOKEN: config.access.metricsToken ? '***' : null,
    CORS_ORIGINS: config.access.corsOrigins ? config.access.corsOrigins.join(',') : null,
    TRUST_PROXY: Array.isArray(config.access.trustProxy) ? config.access.trustProxy.join(',') : config.access.trustProxy,
    RATE_LIMIT_READ_PER_MINUTE: config.limits.readPerMinute,
    RATE_LIMIT_WRITE_PER_MINUTE: config.limits.writePerMinute,
    LIMITS_REFRESH_MS: config.limits.refreshMs,
    EVAL_MAX_CASES_PER_RUN: config.limits.evalMaxCasesPerRun,
    EVAL_MAX_CONCURRENT_RUNS: config.limits.evalMaxConcurrentRuns,
    LOAD_SHED_EVENT_LOOP_DELAY_MS: config.loadShedding.eventLoopDelayMs,
    LOAD_SHED_HEAP_PERCENT: config.loadShedding.heapPercent,
    SLO_CONFIG: config.slo.configPath ?? null,
    SLI_FLUSH_MS: config.slo.flushMs,
    PROVIDER_ENV_ALLOWLIST: config.providers.envAllowlist ? config.providers.envAllowlist.map((p) => p.text).join(',') : '*_API_KEY,*_TOKEN (default)',
    PROVIDER_ALLOWED_HOSTS: config.providers.allowedHosts
      ? config.providers.allowedHosts.map((h) => h.text).join(',')
      : isLoopbackHost(config.host)
        ? '* (default while HOST is loopback)'
        : 'none (default when HOST is beyond loopback)',
  };
}
