import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { getJson, query } from '../api.ts';
import { ErrorBox } from '../components/error-box.tsx';
import { Pager } from '../components/pager.tsx';
import { RunProgress } from '../components/run-progress.tsx';
import { StatusBadge } from '../components/status-badge.tsx';
import { datasetHref, isActive, promptHref, runHref, scoreLine, shortId, shortSnapshot } from '../eval-display.ts';
import type { EvaluationRun, RunList } from '../eval-types.ts';
import { formatTime } from '../format.ts';
import { useLoad } from '../hooks.ts';

const PAGE_SIZE = 50;
/** How often the list is fetched again while a run on it is queued or running. */
const LIVE_REFRESH_MS = 2000;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** Cursors of the pages visited per filter set ('' is the first page): the API pages forward only. */
const trails = new Map<string, string[]>();

/**
 * Evaluation runs, newest first: status, progress (refreshed while a run on the page is queued or
 * running), key scores per scorer, prompt version, dataset, model and creation time. Two runs ticked
 * open the compare page.
 */
export function EvaluationsPage() {
  const { query: params, path, route } = useLocation();
  const status = STATUSES.includes(params.status ?? '') ? params.status! : '';
  const promptVersion = params.prompt_version ?? '';
  const cursor = params.cursor ?? '';
  const filterKey = `${status}|${promptVersion}`;
  const trail = trails.get(filterKey) ?? [''];
  if (!trail.includes(cursor)) trail.splice(0, trail.length, '', ...(cursor ? [cursor] : []));
  trails.set(filterKey, trail);
  const at = trail.indexOf(cursor);

  const url = `/v1/evaluations${query({ status, prompt_version: promptVersion, cursor, limit: PAGE_SIZE })}`;
  const load = useLoad(() => getJson<RunList>(url), url);
  const runs = load.data?.runs ?? [];
  const live = runs.some((r) => isActive(r.status));
  const reload = load.reload;
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, LIVE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [live, reload]);

  const [picked, setPicked] = useState<string[]>([]);
  const [promptFilter, setPromptFilter] = useState(promptVersion);
  useEffect(() => setPromptFilter(promptVersion), [promptVersion]);
  const go = (next: { status?: string; prompt_version?: string; cursor?: string }) => route(`${path}${query({ status, prompt_version: promptVersion, ...next })}`);
  const pick = (runId: string, on: boolean) => setPicked(on ? [...picked.filter((p) => p !== runId), runId].slice(-2) : picked.filter((p) => p !== runId));
  const compareHref = () => {
    // The older run is the base.
    const chosen = runs.filter((r) => picked.includes(r.run_id)).sort((a, b) => a.created_at.localeCompare(b.created_at));
    return `/compare${query({ base: chosen[0]?.run_id, head: chosen[1]?.run_id })}`;
  };

  return (
    <section class="eval-page">
      <div class="eval-head">
        <h1>Evaluations</h1>
        {live ? <span class="live-note">live: refreshing every {LIVE_REFRESH_MS / 1000} s</span> : null}
        <div class="eval-head-actions">
          {picked.length === 2 ? (
            <a class="button-link primary" href={compareHref()}>
              Compare the 2 ticked runs
            </a>
          ) : (
            <span class="muted">Tick two runs to compare them.</span>
          )}
        </div>
      </div>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go({ prompt_version: promptFilter.trim() || undefined, cursor: undefined });
        }}
      >
        <label>
          status
          <select name="status" value={status} onChange={(e) => go({ status: (e.target as HTMLSelectElement).value || undefined, cursor: undefined })}>
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          prompt version
          <input name="prompt_version" value={promptFilter} placeholder="name@N" onInput={(e) => setPromptFilter((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={load.error} />
      {load.data && runs.length === 0 ? <p class="muted">No evaluation runs{status || promptVersion ? ' match these filters' : ' yet: start one with evalops eval run or POST /v1/evaluations'}.</p> : null}
      {runs.length > 0 ? <RunTable runs={runs} picked={picked} onPick={pick} /> : load.loading ? <p class="muted">Loading…</p> : null}
      <Pager
        label={`Page ${at + 1}`}
        canPrevious={at > 0}
        canNext={Boolean(load.data?.next_cursor)}
        onPrevious={() => go({ cursor: trail[at - 1] || undefined })}
        onNext={() => {
          const next = load.data?.next_cursor;
          if (!next) return;
          trail.splice(at + 1, trail.length, next);
          go({ cursor: next });
        }}
      />
    </section>
  );
}

function RunTable(props: { runs: EvaluationRun[]; picked: string[]; onPick: (runId: string, on: boolean) => void }) {
  return (
    <table class="run-table">
      <thead>
        <tr>
          <th title="tick two runs to compare them">cmp</th>
          <th>status</th>
          <th>run</th>
          <th>progress</th>
          <th>key scores</th>
          <th>prompt</th>
          <th>dataset</th>
          <th>model</th>
          <th>created</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((run) => (
          <tr key={run.run_id} data-run-id={run.run_id}>
            <td>
              <input type="checkbox" aria-label={`compare ${shortId(run.run_id)}`} checked={props.picked.includes(run.run_id)} onChange={(e) => props.onPick(run.run_id, (e.target as HTMLInputElement).checked)} />
            </td>
            <td>
              <StatusBadge status={run.status} />
              {run.thresholds_passed === false ? <div class="threshold-bad small-print">threshold failed</div> : null}
            </td>
            <td>
              <a href={runHref(run.run_id)} class="mono">
                {shortId(run.run_id)}
              </a>
              {run.name ? <div class="small-print">{run.name}</div> : null}
              {run.mode === 'replay' ? <div class="small-print muted">replay</div> : null}
            </td>
            <td>
              <RunProgress run={run} />
            </td>
            <td class="key-scores">
              {run.summary
                ? Object.entries(run.summary.scorers).map(([name, s]) => (
                    <div key={name}>
                      <strong>{name}</strong> {scoreLine(s)}
                    </div>
                  ))
                : run.error_message
                  ? <span class="case-error" title={run.error_message}>{run.error_message.slice(0, 80)}</span>
                  : run.progress && run.progress.done > 0
                    ? <span class="muted">so far {run.progress.passed.toLocaleString('en-US')} of {run.progress.done.toLocaleString('en-US')} passed</span>
                    : <span class="muted">—</span>}
            </td>
            <td>
              <a href={promptHref(run.prompt_version)}>{run.prompt_version}</a>
            </td>
            <td>
              <a href={datasetHref(run.data_snapshot_id)} class="mono" title={run.data_snapshot_id}>
                {shortSnapshot(run.data_snapshot_id)}
              </a>
            </td>
            <td>{run.model}</td>
            <td class="nowrap-cell">{formatTime(run.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
