import { useEffect, useRef } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { getJson, postJson, query } from '../api.ts';
import { CASE_PAGE_SIZE, CaseTable, type CaseView } from '../components/case-table.tsx';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorBox } from '../components/error-box.tsx';
import { FileDownloads } from '../components/file-downloads.tsx';
import { RunProgress } from '../components/run-progress.tsx';
import { ScorerSummary } from '../components/scorer-summary.tsx';
import { StatusBadge } from '../components/status-badge.tsx';
import { datasetHref, isActive, promptHref, runHref, shortId, shortSnapshot } from '../eval-display.ts';
import type { EvaluationRun, RunFile } from '../eval-types.ts';
import { formatDuration, formatTime, pretty } from '../format.ts';
import { useLoad } from '../hooks.ts';

/** How often a queued or running run is fetched again. */
const LIVE_REFRESH_MS = 1500;

function caseView(params: Record<string, string>): CaseView {
  const status = params.status === 'pass' || params.status === 'fail' || params.status === 'error' ? params.status : '';
  const offset = Math.max(0, Math.floor(Number(params.offset) || 0));
  return { status, q: params.q ?? '', offset: offset - (offset % CASE_PAGE_SIZE) };
}

/**
 * One evaluation run: its facts, progress (live while it runs), summary per scorer, run_metadata,
 * files, and its cases paged from the server. The case table's filter, search and page live in the
 * URL, so a link (or the back button) reproduces the view.
 */
export function EvaluationPage({ id }: { id?: string }) {
  const runId = id ?? '';
  const { query: params, path, route } = useLocation();
  const load = useLoad(() => getJson<EvaluationRun>(`/v1/evaluations/${encodeURIComponent(runId)}`), runId);
  const run = load.data;
  const active = run ? isActive(run.status) : false;
  const reload = load.reload;
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, LIVE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [active, reload]);

  // From disk rather than the run's row: a cancelled run's results.jsonl.partial is listed too.
  const status = run?.status;
  const files = useLoad(
    async () => (status && !isActive(status) ? (await getJson<{ files: RunFile[] }>(`/v1/evaluations/${encodeURIComponent(runId)}/files`)).files : []),
    `${runId}|${status ?? ''}`,
  );
  const started = useRef<string | undefined>(undefined);
  const view = caseView(params);
  const setView = (next: CaseView) => route(`${path}${query({ status: next.status, q: next.q, offset: next.offset || undefined })}`);

  if (!run) {
    return (
      <section class="eval-page">
        <h1>Evaluation run {shortId(runId)}</h1>
        <ErrorBox error={load.error} />
        {load.loading ? <p class="muted">Loading…</p> : null}
      </section>
    );
  }

  const fileList = files.data ?? run.files ?? [];
  const hasResults = fileList.some((f) => f.name === 'results.jsonl');
  const scorers = run.summary ? Object.keys(run.summary.scorers) : (run.spec.scorers ?? []).map((s) => s.name);
  const duration = run.started_at && run.finished_at ? Date.parse(run.finished_at) - Date.parse(run.started_at) : null;

  return (
    <section class="eval-page">
      <div class="eval-head">
        <h1>
          {run.name ?? 'Evaluation run'} <span class="mono muted">{shortId(run.run_id)}</span>
        </h1>
        <StatusBadge status={run.status} />
        {run.thresholds_passed === null ? null : <span class={run.thresholds_passed ? 'threshold-ok' : 'threshold-bad'}>{run.thresholds_passed ? 'thresholds met' : 'a threshold failed'}</span>}
        <div class="eval-head-actions">
          <a class="button-link" href={`/compare${query({ base: run.run_id })}`}>
            Compare with…
          </a>
          {active ? (
            <ConfirmButton label="Cancel run" question={`Cancel run ${shortId(run.run_id)}? Cases already done stay in results.jsonl.partial.`} action={() => postJson(`/v1/evaluations/${run.run_id}/cancel`)} onDone={reload} />
          ) : null}
          <ConfirmButton
            label="Rerun"
            question="Run the same specification again in replay mode (answers from the response record; the results must match byte for byte)?"
            action={async () => {
              started.current = (await postJson<EvaluationRun>(`/v1/evaluations/${run.run_id}/rerun`, { mode: 'replay' })).run_id;
            }}
            onDone={() => started.current && route(runHref(started.current))}
          />
        </div>
      </div>
      <ErrorBox error={load.error} />
      {run.error_message ? (
        <div class="error-box" role="alert">
          <strong>{run.status}</strong>: {run.error_message}
        </div>
      ) : null}

      <div class="eval-columns">
        <div class="panel">
          <h2>Run</h2>
          <dl class="facts">
            <dt>run id</dt>
            <dd class="mono">{run.run_id}</dd>
            <dt>progress</dt>
            <dd>
              <RunProgress run={run} />
            </dd>
            <dt>prompt</dt>
            <dd>
              <a href={promptHref(run.prompt_version)}>{run.prompt_version}</a>
            </dd>
            <dt>dataset</dt>
            <dd>
              <a class="mono" href={datasetHref(run.data_snapshot_id)} title={run.data_snapshot_id}>
                {shortSnapshot(run.data_snapshot_id)}
              </a>
              {run.sample_size !== null ? ` (sample of ${run.sample_size})` : ''}
            </dd>
            <dt>provider · model</dt>
            <dd>
              {run.provider} · {run.model}
            </dd>
            <dt>mode · seed</dt>
            <dd>
              {run.mode} · {run.seed}
            </dd>
            <dt>concurrency</dt>
            <dd>{run.concurrency}</dd>
            {run.rerun_of ? (
              <>
                <dt>rerun of</dt>
                <dd>
                  <a class="mono" href={runHref(run.rerun_of)}>
                    {shortId(run.rerun_of)}
                  </a>
                </dd>
              </>
            ) : null}
            <dt>created</dt>
            <dd>{formatTime(run.created_at)}</dd>
            <dt>started · finished</dt>
            <dd>
              {formatTime(run.started_at)} · {formatTime(run.finished_at)}
              {duration !== null ? ` (${formatDuration(duration)})` : ''}
            </dd>
            {run.job_id ? (
              <>
                <dt>job</dt>
                <dd>
                  <a class="mono" href={`/jobs/${run.job_id}`}>
                    {shortId(run.job_id)}
                  </a>
                </dd>
              </>
            ) : null}
            {run.mlflow?.run_id ? (
              <>
                <dt>MLflow run</dt>
                <dd class="mono">{run.mlflow.run_id}</dd>
              </>
            ) : null}
          </dl>
        </div>
        <div class="panel">
          <h2>Files</h2>
          <ErrorBox error={files.error} />
          <FileDownloads runId={run.run_id} files={fileList} />
          <details class="metadata" open>
            <summary>run_metadata.json</summary>
            {run.metadata ? <pre class="metadata-json">{pretty(run.metadata)}</pre> : <p class="muted">Written when the run finishes.</p>}
          </details>
        </div>
      </div>

      <div class="panel">
        <h2>Summary</h2>
        {run.summary ? <ScorerSummary summary={run.summary} /> : <p class="muted">{active ? 'The summary is written when the run finishes.' : 'This run has no summary.'}</p>}
      </div>

      <div class="panel">
        <h2>Cases</h2>
        {hasResults ? (
          <CaseTable runId={run.run_id} scorers={scorers} view={view} onView={setView} />
        ) : (
          <p class="muted">
            {active
              ? 'The cases appear when the run finishes (results.jsonl is written at the end, in dataset order).'
              : `This run has no results.jsonl${run.status === 'cancelled' ? '; the cases done before it was cancelled are in results.jsonl.partial' : ''}.`}
          </p>
        )}
      </div>
    </section>
  );
}
