import { validation } from '../errors.ts';
import { isoOf, num, type ReadQuery, rowsOf } from './read-query.ts';

/**
 * Requests and 5xx answers over time, from `request_counts` (the per-minute counts every API
 * process flushes every SLI_FLUSH_MS; src/obs/request-counter*.ts): what the availability SLI is
 * computed from, as a series the dashboard draws. Buckets are whole minutes aligned on the epoch,
 * by the database's clock; a bucket with no row is a bucket with no request.
 */

/** The longest window served: the SLO window (28 days) plus the day of retention beyond it. */
export const MAX_SERIES_SECONDS = 29 * 86_400;
/** Most buckets in one answer. */
export const MAX_SERIES_BUCKETS = 1440;
/** Buckets aimed at when the caller does not choose the step. */
const DEFAULT_BUCKETS = 360;

export interface RequestBucket {
  /** Start of the bucket (ISO 8601). */
  time: string;
  requests: number;
  errors_5xx: number;
  /** errors_5xx / requests; null without requests. */
  error_ratio: number | null;
}

export interface RequestSeries {
  /** Start of the first bucket. */
  since: string;
  /** When it was measured (the database's now). */
  until: string;
  step_seconds: number;
  totals: { requests: number; errors_5xx: number; error_ratio: number | null };
  buckets: RequestBucket[];
}

export interface SeriesPlan {
  stepSeconds: number;
  buckets: number;
}

/**
 * Checks a window and an optional step (milliseconds, as parsed from `6h` and `5m`) and settles the
 * step: whole minutes, at most MAX_SERIES_BUCKETS buckets; by default the smallest whole minute that
 * keeps the series within DEFAULT_BUCKETS points.
 */
export function planRequestSeries(sinceMs: number, stepMs?: number): SeriesPlan {
  if (!Number.isFinite(sinceMs) || sinceMs < 60_000 || sinceMs > MAX_SERIES_SECONDS * 1000) {
    throw validation(`since: the window must be between 1m and ${MAX_SERIES_SECONDS / 86_400}d (request counts are kept that long)`, { field: 'since' });
  }
  const sinceSeconds = Math.ceil(sinceMs / 60_000) * 60;
  let stepSeconds: number;
  if (stepMs === undefined) {
    stepSeconds = Math.ceil(sinceSeconds / DEFAULT_BUCKETS / 60) * 60;
  } else {
    if (!Number.isFinite(stepMs) || stepMs < 60_000 || stepMs % 60_000 !== 0) {
      throw validation('step: must be a whole number of minutes (1m, 5m, 1h): request counts are kept per minute', { field: 'step' });
    }
    stepSeconds = stepMs / 1000;
    if (stepSeconds > sinceSeconds) throw validation('step: must not be longer than the window (since)', { field: 'step' });
  }
  const buckets = Math.ceil(sinceSeconds / stepSeconds);
  if (buckets > MAX_SERIES_BUCKETS) {
    throw validation(`step: ${buckets} buckets is more than ${MAX_SERIES_BUCKETS}; choose a longer step or a shorter window`, { field: 'step' });
  }
  return { stepSeconds, buckets };
}

/**
 * One statement: the buckets from the database's clock (the last one holds now), the counts summed
 * over every instance, route class and status, left-joined so empty buckets read 0. Both numbers are
 * whole and computed by planRequestSeries, so they are inlined.
 */
export function requestSeriesQuery(plan: SeriesPlan): string {
  const step = plan.stepSeconds;
  const span = (plan.buckets - 1) * step;
  if (!Number.isInteger(step) || !Number.isInteger(span) || step <= 0 || span < 0) throw new RangeError(`not a series plan: ${JSON.stringify(plan)}`);
  return `WITH bounds AS (
  SELECT now() AS measured_at,
    to_timestamp((floor(extract(epoch FROM now()) / ${step}) * ${step} - ${span})::float8) AS first_bucket
),
counts AS (
  SELECT to_timestamp((floor(extract(epoch FROM rc.minute) / ${step}) * ${step})::float8) AS bucket,
    sum(rc.requests)::float8 AS requests,
    coalesce(sum(rc.requests) FILTER (WHERE rc.status_code >= 500), 0)::float8 AS errors_5xx
  FROM request_counts rc, bounds
  WHERE rc.minute >= bounds.first_bucket
  GROUP BY 1
)
SELECT s.bucket AS time, coalesce(c.requests, 0)::float8 AS requests, coalesce(c.errors_5xx, 0)::float8 AS errors_5xx, bounds.measured_at
FROM bounds
CROSS JOIN generate_series(bounds.first_bucket, bounds.first_bucket + ${span} * INTERVAL '1 second', ${step} * INTERVAL '1 second') AS s(bucket)
LEFT JOIN counts c ON c.bucket = s.bucket
ORDER BY s.bucket`;
}

const ratio = (bad: number, total: number) => (total > 0 ? bad / total : null);

/** Requests and 5xx answers per bucket over the planned window, measured now. */
export async function measureRequestSeries(read: ReadQuery, plan: SeriesPlan): Promise<RequestSeries> {
  const rows = rowsOf(await read(requestSeriesQuery(plan)));
  const buckets = rows.map((row): RequestBucket => {
    const requests = num(row.requests);
    const errors = num(row.errors_5xx);
    return { time: isoOf(row.time) ?? String(row.time), requests, errors_5xx: errors, error_ratio: ratio(errors, requests) };
  });
  const requests = buckets.reduce((n, b) => n + b.requests, 0);
  const errors = buckets.reduce((n, b) => n + b.errors_5xx, 0);
  return {
    since: buckets[0]?.time ?? new Date().toISOString(),
    until: isoOf(rows[0]?.measured_at) ?? new Date().toISOString(),
    step_seconds: plan.stepSeconds,
    totals: { requests, errors_5xx: errors, error_ratio: ratio(errors, requests) },
    buckets,
  };
}
