import { formatDuration, formatTime } from '../format.ts';
import type { Job } from '../ops-types.ts';
import { StatusBadge } from './status-badge.tsx';

/** How long a job ran (its last attempt), or has been running. */
export function runTime(job: Job, now = Date.now()): number | null {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : job.status === 'running' ? now : null;
  return end === null ? null : Math.max(0, end - Date.parse(job.started_at));
}

/** A page of jobs, each linking to its own page. */
export function JobTable({ jobs }: { jobs: Job[] }) {
  return (
    <table class="job-table">
      <thead>
        <tr>
          <th>job</th>
          <th>type</th>
          <th>status</th>
          <th class="num">attempts</th>
          <th>created</th>
          <th>finished</th>
          <th class="num">ran</th>
          <th>error</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <tr key={job.job_id} data-job-id={job.job_id}>
            <td class="mono">
              <a href={`/jobs/${job.job_id}`} title={job.job_id}>
                {job.job_id.slice(0, 8)}
              </a>
            </td>
            <td>{job.type}</td>
            <td>
              <StatusBadge status={job.status} />
            </td>
            <td class="num">
              {job.attempts}/{job.max_attempts}
            </td>
            <td class="nowrap">{formatTime(job.created_at)}</td>
            <td class="nowrap">{formatTime(job.finished_at)}</td>
            <td class="num">{formatDuration(runTime(job))}</td>
            <td class="error-cell" title={job.error_message ?? ''}>
              {job.error_message ?? ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
