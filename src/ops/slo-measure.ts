import type { FailureStatus, SloConfig, SloDefinition, SliKind } from '../obs/slo-config.ts';
import { ALERT_WINDOWS, ALERT_WINDOW_SECONDS, type EventCounts, evaluateSlo, type SloCounts, type SloReport } from '../obs/slo-math.ts';
import { num, type ReadQuery, rowsOf, secondsAgo } from './read-query.ts';

/**
 * The SLIs measured from the database: API availability from `request_counts` (what every API
 * process flushed), job success from `jobs`, evaluation-run success from `evaluation_runs`, each
 * counted over the alert windows and the SLO's full window in one statement, then judged by
 * src/obs/slo-math.ts. `evalops slo` and `GET /v1/slo` both print what `measureSlos` returns.
 */

/** A statement's windows: the five alert windows and the full one, in that order. */
function windowsOf(slo: SloDefinition): number[] {
  return [...ALERT_WINDOWS.map((w) => ALERT_WINDOW_SECONDS[w]), slo.windowSeconds];
}

/** Statuses come from a closed list (slo-config), so they can be inlined. */
const statusList = (statuses: readonly string[]) => statuses.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ');

/**
 * Good and total events per window. Request counts are per minute: a window takes the minutes that
 * started inside it, so it is exact to the minute.
 */
export function sliCountsQuery(kind: SliKind, badStatuses: readonly FailureStatus[], windows: readonly number[]): string {
  const longest = Math.max(...windows);
  if (kind === 'api_availability') {
    const columns = windows.flatMap((s, i) => [
      `coalesce(sum(requests) FILTER (WHERE minute > ${secondsAgo(s)} AND status_code < 500), 0)::float8 AS good_${i}`,
      `coalesce(sum(requests) FILTER (WHERE minute > ${secondsAgo(s)}), 0)::float8 AS total_${i}`,
    ]);
    return `SELECT ${columns.join(',\n  ')}\nFROM request_counts\nWHERE minute > ${secondsAgo(longest)}`;
  }
  const table = kind === 'job_success' ? 'jobs' : 'evaluation_runs';
  const columns = windows.flatMap((s, i) => [
    `count(*) FILTER (WHERE finished_at >= ${secondsAgo(s)} AND status = 'succeeded')::float8 AS good_${i}`,
    `count(*) FILTER (WHERE finished_at >= ${secondsAgo(s)})::float8 AS total_${i}`,
  ]);
  // A status that is neither good nor bad (cancelled, when slo.yaml leaves it out) is not counted at all.
  return `SELECT ${columns.join(',\n  ')}\nFROM ${table}\nWHERE finished_at >= ${secondsAgo(longest)} AND status IN (${statusList(['succeeded', ...badStatuses])})`;
}

/** The counts `evaluateSlo` needs for one SLO. */
export async function measureSloCounts(read: ReadQuery, slo: SloDefinition): Promise<SloCounts> {
  const windows = windowsOf(slo);
  const row = rowsOf(await read(sliCountsQuery(slo.sli.kind, slo.sli.badStatuses, windows)))[0] ?? {};
  const counts = windows.map((_, i): EventCounts => ({ good: num(row[`good_${i}`]), total: num(row[`total_${i}`]) }));
  return {
    windows: Object.fromEntries(ALERT_WINDOWS.map((w, i) => [w, counts[i]!])) as SloCounts['windows'],
    full: counts[ALERT_WINDOWS.length]!,
  };
}

/** One SLO as `evalops slo --json` and `GET /v1/slo` show it. */
export interface SloStatus {
  readonly name: string;
  readonly description: string;
  readonly sli: SliKind;
  readonly objective_percent: number;
  readonly window: string;
  readonly runbook_section: string;
  readonly runbook_url: string;
  readonly report: SloReport;
}

export interface SloStatusReport {
  readonly service: string;
  /** Where the definitions came from (a file, or `built-in defaults`). */
  readonly source: string;
  readonly measured_at: string;
  readonly slos: readonly SloStatus[];
}

/** Every SLO of `config`, measured now. */
export async function measureSlos(read: ReadQuery, config: SloConfig): Promise<SloStatusReport> {
  const slos: SloStatus[] = [];
  for (const slo of config.slos) {
    const report = evaluateSlo(slo, await measureSloCounts(read, slo));
    slos.push({
      name: slo.name,
      description: slo.description,
      sli: slo.sli.kind,
      objective_percent: slo.objectivePercent,
      window: slo.window,
      runbook_section: slo.runbookSection,
      runbook_url: slo.runbookUrl,
      report,
    });
  }
  return { service: config.service, source: config.source, measured_at: new Date().toISOString(), slos };
}
