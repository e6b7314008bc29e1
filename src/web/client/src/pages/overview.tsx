import { useLocation } from 'preact-iso';
import { getJson, getJsonAccepting, query } from '../api.ts';
import { ErrorBox } from '../components/error-box.tsx';
import { HealthCards } from '../components/health-cards.tsx';
import { JobStatusBars } from '../components/job-status-bars.tsx';
import { RequestCharts } from '../components/request-charts.tsx';
import { SloTable } from '../components/slo-table.tsx';
import { StatusBadge } from '../components/status-badge.tsx';
import { formatDuration, formatTime } from '../format.ts';
import { useLoad } from '../hooks.ts';
import type { DetailedHealth, JobStats, RequestSeries, SloStatusReport } from '../ops-types.ts';

/** How often the overview reads everything again. */
export const OVERVIEW_REFRESH_MS = 5000;

const RANGES = ['1h', '6h', '24h', '7d'] as const;

/**
 * On call, at a glance: which component is down, how much error budget is left, how the jobs of the
 * last hour and day ended, and the request rate and 5xx ratio over time. Reads itself again every
 * few seconds; each panel loads and fails on its own.
 */
export function OverviewPage() {
  const { query: params, path, route } = useLocation();
  const range = (RANGES as readonly string[]).includes(params.range ?? '') ? params.range! : '1h';

  // 503 is how /health/detailed says "unhealthy": its body is the report to show.
  const health = useLoad(() => getJsonAccepting<DetailedHealth>('/health/detailed', [503]), 'health', OVERVIEW_REFRESH_MS);
  const slo = useLoad(() => getJson<SloStatusReport>('/v1/slo'), 'slo', OVERVIEW_REFRESH_MS);
  const jobs = useLoad(
    async () => {
      const [hour, day] = await Promise.all([getJson<JobStats>('/v1/jobs/stats?since=1h'), getJson<JobStats>('/v1/jobs/stats?since=24h')]);
      return { hour, day };
    },
    'job-stats',
    OVERVIEW_REFRESH_MS,
  );
  const requests = useLoad(() => getJson<RequestSeries>(`/v1/slo/requests${query({ since: range })}`), `requests-${range}`, OVERVIEW_REFRESH_MS);

  const h = health.data;
  return (
    <section class="overview">
      <div class="page-head">
        <h1>Overview</h1>
        {h ? <StatusBadge status={h.status} /> : null}
        {h ? (
          <span class="muted">
            evalops {h.version}
            {h.commit ? ` · commit ${h.commit.slice(0, 12)}` : ''} · up {formatDuration(h.uptime_s * 1000)}
          </span>
        ) : null}
        <span class="muted page-head-right" data-testid="refreshed">
          {h ? `checked ${formatTime(h.checked_at)}` : 'loading…'} · refreshes every {OVERVIEW_REFRESH_MS / 1000} s
        </span>
      </div>

      <section class="panel" aria-label="components">
        <h2>Components</h2>
        <ErrorBox error={health.error} />
        {h ? <HealthCards health={h} /> : health.error ? null : <p class="muted">loading…</p>}
      </section>

      <section class="panel" aria-label="service level objectives">
        <h2>Service level objectives</h2>
        <ErrorBox error={slo.error} />
        {slo.data ? <SloTable report={slo.data} /> : slo.error ? null : <p class="muted">loading…</p>}
      </section>

      <div class="overview-row">
        <section class="panel" aria-label="job statuses">
          <h2>Job statuses</h2>
          <ErrorBox error={jobs.error} />
          {jobs.data ? (
            <div class="job-status-pair">
              <JobStatusBars label="last hour" since="1h" stats={jobs.data.hour} />
              <JobStatusBars label="last 24 hours" since="24h" stats={jobs.data.day} />
            </div>
          ) : jobs.error ? null : (
            <p class="muted">loading…</p>
          )}
        </section>

        <section class="panel requests-panel" aria-label="requests">
          <div class="panel-head">
            <h2>Requests</h2>
            <label class="muted">
              over the last{' '}
              <select value={range} onChange={(e) => route(`${path}${query({ range: (e.target as HTMLSelectElement).value })}`, true)} name="range">
                {RANGES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <ErrorBox error={requests.error} />
          {requests.data ? <RequestCharts series={requests.data} /> : requests.error ? null : <p class="muted">loading…</p>}
        </section>
      </div>
    </section>
  );
}
