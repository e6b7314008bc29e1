import { BUCKET_COUNT, latencyQuantile } from '../obs/request-counter.ts';
import { DEFAULT_BAD_STATUSES, type FailureStatus, type SloConfig } from '../obs/slo-config.ts';
import type { ImpactFigures } from './incident-fields.ts';
import { num, type ReadQuery, rowsOf, secondsAgo } from './read-query.ts';

/**
 * The impact figures of an incident message, measured from the database over a recent window: API
 * error ratio and p99 latency from `request_counts` (every API instance), job and evaluation
 * failure ratios from their tables. A figure with no events behind it is null ("not measured"),
 * never a made-up zero.
 */

export interface MeasuredImpactDetail {
  readonly window_seconds: number;
  readonly figures: ImpactFigures;
  readonly requests: { readonly total: number; readonly errors_5xx: number };
  readonly jobs: { readonly ended: number; readonly bad: number };
  readonly evaluation_runs: { readonly ended: number; readonly bad: number };
  /** Where the failures were: route classes answering 5xx, job types failing, evaluation runs. */
  readonly affected: readonly string[];
}

/** Bad statuses of the SLO of `kind` in slo.yaml, so the incident's figures agree with `evalops slo`. */
function badStatusesFor(slo: SloConfig | undefined, kind: 'job_success' | 'evaluation_success'): readonly FailureStatus[] {
  return slo?.slos.find((s) => s.sli.kind === kind)?.sli.badStatuses ?? DEFAULT_BAD_STATUSES;
}

const quoted = (list: readonly string[]) => list.map((s) => `'${s}'`).join(', ');

/** Measures the four figures over the last `windowSeconds`. */
export async function measureImpact(read: ReadQuery, windowSeconds: number, slo?: SloConfig): Promise<MeasuredImpactDetail> {
  const since = secondsAgo(Math.max(60, Math.round(windowSeconds)));
  const byClass = rowsOf(
    await read(`SELECT route_class, coalesce(sum(requests), 0)::float8 AS total,
  coalesce(sum(requests) FILTER (WHERE status_code >= 500), 0)::float8 AS errors
FROM request_counts WHERE minute > ${since} GROUP BY route_class ORDER BY route_class`),
  );
  const buckets = rowsOf(
    await read(`SELECT i::int AS i, sum(b)::float8 AS n
FROM request_counts, unnest(duration_buckets) WITH ORDINALITY AS u(b, i)
WHERE minute > ${since} GROUP BY i ORDER BY i`),
  );
  const histogram = new Array<number>(BUCKET_COUNT).fill(0);
  for (const r of buckets) {
    const i = num(r.i) - 1;
    if (i >= 0 && i < BUCKET_COUNT) histogram[i] = num(r.n);
  }
  const outcome = async (table: 'jobs' | 'evaluation_runs', bad: readonly FailureStatus[]) => {
    const groupBy = table === 'jobs' ? 'type' : `'evaluation'`;
    const rows = rowsOf(
      await read(`SELECT ${groupBy} AS what, count(*)::float8 AS ended, count(*) FILTER (WHERE status IN (${quoted(bad)}))::float8 AS bad
FROM ${table} WHERE finished_at >= ${since} AND status IN (${quoted(['succeeded', ...bad])}) GROUP BY 1 ORDER BY 1`),
    );
    return rows.map((r) => ({ what: String(r.what), ended: num(r.ended), bad: num(r.bad) }));
  };
  const jobs = await outcome('jobs', badStatusesFor(slo, 'job_success'));
  const evals = await outcome('evaluation_runs', badStatusesFor(slo, 'evaluation_success'));

  const total = byClass.reduce((a, r) => a + num(r.total), 0);
  const errors = byClass.reduce((a, r) => a + num(r.errors), 0);
  const jobsEnded = jobs.reduce((a, r) => a + r.ended, 0);
  const jobsBad = jobs.reduce((a, r) => a + r.bad, 0);
  const evalsEnded = evals.reduce((a, r) => a + r.ended, 0);
  const evalsBad = evals.reduce((a, r) => a + r.bad, 0);

  const affected = [
    ...byClass.filter((r) => num(r.errors) > 0).map((r) => `API ${routeClassLabel(String(r.route_class))}: ${num(r.errors)} of ${num(r.total)} requests answered 5xx`),
    ...jobs.filter((r) => r.bad > 0).map((r) => `jobs of type ${r.what}: ${r.bad} of ${r.ended} ended failed or cancelled`),
    ...(evalsBad > 0 ? [`evaluation runs: ${evalsBad} of ${evalsEnded} ended failed or cancelled`] : []),
  ];
  const p99 = latencyQuantile(histogram, 0.99);
  return {
    window_seconds: windowSeconds,
    figures: {
      apiErrorRatio: total > 0 ? errors / total : null,
      p99LatencyMs: p99 === null ? null : Math.round(p99),
      jobFailureRatio: jobsEnded > 0 ? jobsBad / jobsEnded : null,
      evaluationFailureRatio: evalsEnded > 0 ? evalsBad / evalsEnded : null,
    },
    requests: { total, errors_5xx: errors },
    jobs: { ended: jobsEnded, bad: jobsBad },
    evaluation_runs: { ended: evalsEnded, bad: evalsBad },
    affected,
  };
}

const CLASS_LABELS: Record<string, string> = { health: '/health', metrics: '/metrics', docs: '/docs', local: '/local (CLI)', unmatched: 'unmatched URLs', other: 'other routes' };

/** `/v1/jobs` for the route class `jobs`; the probe and catch-all classes by their own names. */
export function routeClassLabel(routeClass: string): string {
  return CLASS_LABELS[routeClass] ?? `/v1/${routeClass}`;
}
