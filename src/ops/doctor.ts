import { type Config, redactUrl, type RunnerMode } from '../config/config.ts';
import type { MigrationStatus } from '../db/migrator.ts';
import type { SloConfig } from '../obs/slo-config.ts';
import {
  backgroundTasksCheck,
  configurationCheck,
  databaseCheck,
  endpointsCheck,
  errorRatioCheck,
  logsCheck,
  migrationsCheck,
  redisCheck,
  sloBurnCheck,
} from './doctor-api-checks.ts';
import type { DoctorContext, DoctorDatabase } from './doctor-context.ts';
import { failedRunsCheck, mlflowCheck, replayCheck, resultFilesCheck } from './doctor-eval-checks.ts';
import { jobFailureChecks, workerChecks } from './doctor-job-checks.ts';
import { probeHttp } from './doctor-probes.ts';
import type { CheckResult, DoctorReport } from './doctor-types.ts';
import { measureSlos, type SloStatusReport } from './slo-measure.ts';

/**
 * `evalops doctor`: the runbook's checks run against a live deployment, in the runbook's order
 * (common first checks, then sections A, B and C). The API is reached at `url`; the database, Redis
 * and MLflow with the doctor's own configuration (the deployment's environment). Everything is read
 * only; the one exception is `--replay`, which asks the API for one replay run.
 */

export interface DoctorOptions {
  url: string;
  config: Config;
  slo: SloConfig;
  /** Opens read access to the database; throws with the reason when it cannot. */
  openDatabase: () => Promise<DoctorDatabase & { close(): Promise<void> }>;
  /** Bound on each probe. @defaultValue 3000 */
  timeoutMs?: number;
  /** EVALOPS_API_KEY, for the replay. */
  apiKey?: string | undefined;
  replay?: { enabled: boolean; timeoutMs: number };
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Runs every check and returns the report; never throws for what it finds. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 3000;
  const url = options.url.replace(/\/+$/, '');
  const metricsHeaders: Record<string, string> = options.config.access.metricsToken ? { authorization: `Bearer ${options.config.access.metricsToken}` } : {};

  // The HTTP probes and the database open run side by side: a dead database must not delay the rest.
  const [health, detailed, metrics, opened] = await Promise.all([
    probeHttp(url, '/health', timeoutMs),
    // /health/detailed bounds each of its probes itself; leave room for that.
    // With a key, the answer names the server's database (redacted); anonymous callers see its kind only.
    probeHttp(url, '/health/detailed', timeoutMs + 2 * options.config.health.probeTimeoutMs, options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    probeHttp(url, '/metrics', timeoutMs, metricsHeaders),
    options.openDatabase().then(
      (db) => ({ db, error: null }),
      (err) => ({ db: null, error: message(err) }),
    ),
  ]);
  const db = opened.db;
  try {
    let migrations: MigrationStatus | null = null;
    let migrationsError: string | null = null;
    let sloStatus: SloStatusReport | null = null;
    let sloError: string | null = null;
    if (db) {
      try {
        migrations = await db.migrationStatus();
      } catch (err) {
        migrationsError = message(err);
      }
      try {
        sloStatus = await measureSlos(db.read, options.slo);
      } catch (err) {
        sloError = message(err);
      }
    }
    const serverMode = ((detailed.body as { components?: { background_tasks?: { details?: { runner_mode?: string } } } } | null)?.components?.background_tasks?.details?.runner_mode ?? null) as RunnerMode | null;
    const ctx: DoctorContext = {
      url,
      config: options.config,
      slo: options.slo,
      timeoutMs,
      db,
      dbError: opened.error,
      migrations,
      migrationsError,
      health,
      detailed,
      metrics,
      sloStatus,
      sloError,
      runnerMode: serverMode === 'queue' || serverMode === 'inprocess' ? serverMode : options.config.runnerMode,
      apiKey: options.apiKey,
      replay: options.replay ?? { enabled: false, timeoutMs: 120_000 },
    };

    const checks: CheckResult[] = [
      endpointsCheck(ctx),
      configurationCheck(ctx),
      logsCheck(ctx),
      await errorRatioCheck(ctx),
      databaseCheck(ctx),
      await redisCheck(ctx),
      backgroundTasksCheck(ctx),
      migrationsCheck(ctx),
      sloBurnCheck(ctx, 'A'),
      ...(await jobFailureChecks(ctx)),
      ...(await workerChecks(ctx)),
      sloBurnCheck(ctx, 'B'),
      await failedRunsCheck(ctx),
      await resultFilesCheck(ctx),
      await mlflowCheck(ctx),
      await replayCheck(ctx),
      sloBurnCheck(ctx, 'C'),
    ];
    const findings = checks.filter((c) => c.status === 'action');
    return {
      url,
      checked_at: new Date(started).toISOString(),
      duration_ms: Date.now() - started,
      configuration: {
        JOB_RUNNER_MODE: ctx.runnerMode,
        DATABASE_URL: options.config.databaseUrl ? redactUrl(options.config.databaseUrl) : null,
        REDIS_URL: options.config.redisUrl ? redactUrl(options.config.redisUrl) : null,
        MLFLOW_TRACKING_URI: options.config.mlflow ? redactUrl(options.config.mlflow.trackingUri) : null,
        database_read: db ? (db.via === 'server' ? db.location : `${db.location} (directly)`) : null,
        slo_config: options.slo.source,
      },
      checks,
      findings,
      action_needed: findings.length > 0,
    };
  } finally {
    await db?.close().catch(() => {});
  }
}
