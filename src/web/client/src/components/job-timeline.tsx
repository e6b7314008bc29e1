import { formatDuration, formatTime } from '../format.ts';
import type { Job } from '../ops-types.ts';

export interface TimelineEntry {
  at: string;
  label: string;
  detail?: string;
  tone?: 'ok' | 'bad' | 'idle';
}

/** To the millisecond: a job's moments are often within the same second. */
const preciseTime = (iso: string) => new Date(iso).toISOString().replace('T', ' ');

const after = (a: string | null, b: string) => a !== null && Date.parse(a) > Date.parse(b);

/**
 * What the job's row records, in time order: its timestamps, with the attempt count and error beside
 * the moments they belong to. Nothing is inferred that the row does not hold: a row keeps the start
 * of its latest attempt only, and a retry clears the times of the attempts before it.
 */
export function jobTimeline(job: Job): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ at: job.created_at, label: 'submitted', detail: `up to ${job.max_attempts} attempt${job.max_attempts === 1 ? '' : 's'}, priority ${job.priority}` }];
  // run_at equals created_at for a job due at once; later, it is a chosen start, a backoff or a retry.
  if (after(job.run_at, job.created_at)) {
    const due = Date.parse(job.run_at) > Date.now() ? 'due to run (not before)' : 'due to run';
    entries.push({ at: job.run_at, label: due, detail: job.status === 'queued' && job.error_message ? `after: ${job.error_message}` : undefined });
  }
  if (job.started_at) {
    entries.push({ at: job.started_at, label: `attempt ${job.attempts} of ${job.max_attempts} started`, detail: job.locked_by ? `by ${job.locked_by}` : undefined });
  }
  if (job.cancel_requested_at) entries.push({ at: job.cancel_requested_at, label: 'cancellation requested', tone: 'idle' });
  if (job.finished_at) {
    const ran = job.started_at ? ` after ${formatDuration(Date.parse(job.finished_at) - Date.parse(job.started_at))}` : '';
    entries.push({
      at: job.finished_at,
      label: `${job.status}${ran}`,
      detail: job.status === 'succeeded' ? undefined : (job.error_message ?? undefined),
      tone: job.status === 'succeeded' ? 'ok' : job.status === 'failed' ? 'bad' : 'idle',
    });
  }
  const last = entries.reduce((m, e) => Math.max(m, Date.parse(e.at)), 0);
  if (Date.parse(job.updated_at) > last) entries.push({ at: job.updated_at, label: 'last updated', detail: job.lease_expires_at ? `lease until ${formatTime(job.lease_expires_at)}` : undefined });
  // Stable on equal times: the order above is the order things happen in.
  return entries.map((e, i) => ({ e, i })).sort((a, b) => Date.parse(a.e.at) - Date.parse(b.e.at) || a.i - b.i).map(({ e }) => e);
}

/** The job's recorded moments as a vertical list, with the time since the one before. */
export function JobTimeline({ job }: { job: Job }) {
  const entries = jobTimeline(job);
  return (
    <ol class="timeline">
      {entries.map((e, i) => {
        const gap = i > 0 ? Date.parse(e.at) - Date.parse(entries[i - 1]!.at) : null;
        return (
          <li key={`${e.label}-${e.at}`} class={e.tone ? `timeline-${e.tone}` : ''}>
            <span class="timeline-time mono">{preciseTime(e.at)}</span>
            <span class="timeline-label">{e.label}</span>
            {gap !== null && gap > 0 ? <span class="muted timeline-gap">+{formatDuration(gap)}</span> : null}
            {e.detail ? <div class="timeline-detail">{e.detail}</div> : null}
          </li>
        );
      })}
    </ol>
  );
}
