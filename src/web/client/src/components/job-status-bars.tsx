import { JOB_STATUS_COLORS, JOB_STATUSES, type JobStats } from '../ops-types.ts';
import { CountBars } from './chart.tsx';

/** The runbook's status distribution (GET /v1/jobs/stats) of jobs created over one window, as bars. */
export function JobStatusBars({ label, stats, since }: { label: string; stats: JobStats; since: string }) {
  return (
    <div class="job-status-bars" data-since={since}>
      <CountBars
        title={`Jobs created in the ${label}: ${stats.total.toLocaleString('en-US')}`}
        counts={JOB_STATUSES.map((status) => ({ label: status, value: stats.counts[status] ?? 0, color: JOB_STATUS_COLORS[status] }))}
      />
      <a class="small" href={`/jobs?since=${since}`}>
        list them
      </a>
    </div>
  );
}
