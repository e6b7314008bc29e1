import type { Config, RunnerMode } from '../config/config.ts';
import type { MigrationStatus } from '../db/migrator.ts';
import type { SloConfig, SloDefinition, SliKind } from '../obs/slo-config.ts';
import { DEFAULT_BAD_STATUSES, DEFAULT_MIN_EVENTS } from '../obs/slo-config.ts';
import type { HttpProbe } from './doctor-probes.ts';
import type { ReadQuery } from './read-query.ts';
import type { SloStatusReport } from './slo-measure.ts';

/** Read access to the deployment's database, as the CLI opened it (directly, or through the server). */
export interface DoctorDatabase {
  readonly read: ReadQuery;
  migrationStatus(): Promise<MigrationStatus>;
  /** Where it is, password masked. */
  readonly location: string;
  /** `direct`, or `server` when the server holding the embedded database answers for it. */
  readonly via: string;
}

/** What every section's checks read: gathered once, before the sections run. */
export interface DoctorContext {
  readonly url: string;
  /** The doctor's own configuration: the deployment's DATABASE_URL, REDIS_URL, MLflow settings. */
  readonly config: Config;
  readonly slo: SloConfig;
  /** Bound on each probe. */
  readonly timeoutMs: number;
  /** Null when the database could not be opened; `dbError` says why. */
  readonly db: DoctorDatabase | null;
  readonly dbError: string | null;
  readonly migrations: MigrationStatus | null;
  readonly migrationsError: string | null;
  readonly health: HttpProbe;
  readonly detailed: HttpProbe;
  readonly metrics: HttpProbe;
  /** Null when the database could not be read. */
  readonly sloStatus: SloStatusReport | null;
  readonly sloError: string | null;
  /** The server's runner mode when /health/detailed says it, else the doctor's configuration. */
  readonly runnerMode: RunnerMode;
  /** Sent as a Bearer token to /v1 routes (EVALOPS_API_KEY), for the replay. */
  readonly apiKey: string | undefined;
  readonly replay: { readonly enabled: boolean; readonly timeoutMs: number };
}

/** A component of /health/detailed, when the probe answered with one. */
export function component(ctx: DoctorContext, name: 'database' | 'redis' | 'background_tasks'): { status: string; message?: string; details?: Record<string, unknown>; latency_ms?: number | null } | null {
  const body = ctx.detailed.body as { components?: Record<string, { status: string; message?: string; details?: Record<string, unknown> }> } | null;
  return body && typeof body === 'object' && body.components?.[name] ? body.components[name]! : null;
}

/** What the job or evaluation SLO says about judging failure ratios (defaults when slo.yaml has none of that kind). */
export function sloOfKind(ctx: DoctorContext, kind: SliKind): Pick<SloDefinition, 'errorBudget' | 'minEvents'> & { badStatuses: readonly string[]; name: string | null } {
  const slo = ctx.slo.slos.find((s) => s.sli.kind === kind);
  if (slo) return { name: slo.name, errorBudget: slo.errorBudget, minEvents: slo.minEvents, badStatuses: kind === 'api_availability' ? [] : slo.sli.badStatuses };
  return { name: null, errorBudget: kind === 'api_availability' ? 0.001 : 0.01, minEvents: DEFAULT_MIN_EVENTS, badStatuses: kind === 'api_availability' ? [] : DEFAULT_BAD_STATUSES };
}

/** Renders a percentage for evidence lines. */
export const pct = (ratio: number) => `${(ratio * 100).toFixed(ratio !== 0 && ratio < 0.001 ? 3 : 2)}%`;
