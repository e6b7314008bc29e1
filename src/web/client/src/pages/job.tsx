import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorBox } from '../components/error-box.tsx';
import { JobTimeline } from '../components/job-timeline.tsx';
import { runTime } from '../components/job-table.tsx';
import { StatusBadge } from '../components/status-badge.tsx';
import { formatDuration, formatTime, pretty } from '../format.ts';
import { useLoad } from '../hooks.ts';
import type { Job } from '../ops-types.ts';

/** A job changes by itself while queued or running: read it again this often. */
const REFRESH_MS = 2000;

const CANCELLABLE = ['queued', 'running'];
const RETRYABLE = ['failed', 'cancelled'];

function Facts({ job }: { job: Job }) {
  const rows: [string, string][] = [
    ['type', job.type],
    ['attempts', `${job.attempts} of ${job.max_attempts}`],
    ['priority', String(job.priority)],
    ['created', formatTime(job.created_at)],
    ['due', formatTime(job.run_at)],
    ['ran', formatDuration(runTime(job))],
    ['idempotency key', job.idempotency_key ?? '—'],
    ['held by', job.locked_by ? `${job.locked_by} (lease until ${formatTime(job.lease_expires_at)})` : '—'],
  ];
  return (
    <dl class="facts">
      {rows.map(([k, v]) => [<dt key={`${k}-t`}>{k}</dt>, <dd key={`${k}-d`}>{v}</dd>])}
    </dl>
  );
}

function Block({ title, value, name }: { title: string; value: unknown; name: string }) {
  return (
    <section class="panel job-block" data-block={name}>
      <h2>{title}</h2>
      {value === null || value === undefined ? <p class="muted">none</p> : <pre>{pretty(value)}</pre>}
    </section>
  );
}

/** One job: what it was given, what it returned or why it failed, its attempts and recorded moments; cancel and retry. */
export function JobPage({ id }: { id?: string }) {
  const jobId = id ?? '';
  // A job that does not exist will not come to exist: stop asking.
  const [gone, setGone] = useState(false);
  const load = useLoad(() => getJson<Job>(`/v1/jobs/${encodeURIComponent(jobId)}`), jobId, gone ? undefined : REFRESH_MS);
  const job = load.data;
  const notFound = !job && load.error instanceof ApiError && load.error.status === 404;
  useEffect(() => setGone(notFound), [notFound]);
  const short = jobId.slice(0, 8);
  return (
    <section class="job-page">
      <p class="crumbs">
        <a href="/jobs">← Jobs</a>
      </p>
      <div class="page-head">
        <h1>
          Job <span class="mono">{jobId}</span>
        </h1>
        {job ? <StatusBadge status={job.status} /> : null}
      </div>
      <ErrorBox error={load.error && !job ? load.error : undefined} />
      {job ? (
        <>
          <div class="actions">
            <ConfirmButton
              label="Cancel"
              question={`Cancel job ${short} (${job.type})? A queued job is cancelled at once; a running one is asked to stop.`}
              disabled={!CANCELLABLE.includes(job.status)}
              action={() => postJson<Job>(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`)}
              onDone={load.reload}
            />
            <ConfirmButton
              label="Retry"
              question={`Queue job ${short} (${job.type}) again, with a fresh set of ${job.max_attempts} attempt${job.max_attempts === 1 ? '' : 's'}?`}
              disabled={!RETRYABLE.includes(job.status)}
              action={() => postJson<Job>(`/v1/jobs/${encodeURIComponent(jobId)}/retry`)}
              onDone={load.reload}
            />
            <span class="muted">read again every {REFRESH_MS / 1000} s</span>
          </div>
          {/* A refresh that fails keeps the last answer on screen, with the reason. */}
          <ErrorBox error={load.error} />
          <div class="job-columns">
            <section class="panel">
              <h2>Details</h2>
              <Facts job={job} />
            </section>
            <section class="panel">
              <h2>Timeline</h2>
              <JobTimeline job={job} />
            </section>
          </div>
          {job.error_message ? (
            <section class="panel job-block" data-block="error">
              <h2>Error</h2>
              <pre class="job-error">{job.error_message}</pre>
              {RETRYABLE.includes(job.status) ? null : <p class="muted small">Reported by an earlier attempt.</p>}
            </section>
          ) : null}
          <div class="job-columns">
            <Block title="Payload" name="payload" value={job.payload} />
            <Block title="Result" name="result" value={job.result} />
          </div>
          {job.progress !== null && job.progress !== undefined ? <Block title="Progress" name="progress" value={job.progress} /> : null}
        </>
      ) : load.error ? null : (
        <p class="muted">loading…</p>
      )}
    </section>
  );
}
