import type { EvaluationRun } from '../eval-types.ts';

/** A run's progress: a bar and "done / total" (errors counted in done). */
export function RunProgress({ run }: { run: Pick<EvaluationRun, 'progress' | 'status' | 'summary'> }) {
  const total = run.progress?.total ?? run.summary?.cases ?? 0;
  const done = run.progress?.done ?? (run.status === 'succeeded' ? total : 0);
  const ratio = total > 0 ? Math.min(1, done / total) : run.status === 'succeeded' ? 1 : 0;
  const label = total > 0 ? `${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}` : run.status === 'queued' ? 'waiting' : '—';
  return (
    <div class="run-progress" title={`${Math.round(ratio * 100)}% of the cases done`}>
      <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={total} aria-valuenow={done}>
        <span style={{ width: `${ratio * 100}%` }} />
      </div>
      <span class="run-progress-label">{label}</span>
    </div>
  );
}
