import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson, query } from '../api.ts';
import { asText } from '../eval-display.ts';
import type { CasePage, CaseRecord } from '../eval-types.ts';
import { formatDuration, formatNumber } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { ErrorBox } from './error-box.tsx';
import { Pager } from './pager.tsx';
import { StatusBadge } from './status-badge.tsx';

/** Cases per page, read from the server page by page (GET /v1/evaluations/:id/cases). */
export const CASE_PAGE_SIZE = 50;

/** What the table shows; the run page keeps it in the URL. */
export interface CaseView {
  status: '' | 'pass' | 'fail' | 'error';
  q: string;
  offset: number;
}

const outcomeOf = (c: CaseRecord) => (c.error !== null ? 'error' : c.pass ? 'pass' : 'fail');

/**
 * A finished run's cases, paged on the server: an outcome filter, a search box, previous/next and a
 * jump to any page; a row opens to show the case's inputs, expected answer, output, scores and error.
 * The page on screen stays while the next one loads.
 */
export function CaseTable(props: { runId: string; scorers: string[]; view: CaseView; onView: (view: CaseView) => void }) {
  const { runId, view, onView } = props;
  const url = `/v1/evaluations/${runId}/cases${query({ offset: view.offset || undefined, limit: CASE_PAGE_SIZE, status: view.status || undefined, q: view.q || undefined })}`;
  const load = useLoad(() => getJson<CasePage>(url), url);
  const last = useRef<CasePage | undefined>(undefined);
  if (load.data) last.current = load.data;
  const page = load.data ?? last.current;

  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const [search, setSearch] = useState(view.q);
  const [jump, setJump] = useState('');
  useEffect(() => setOpen(new Set()), [url]);
  useEffect(() => setSearch(view.q), [view.q]);

  const pages = page ? Math.max(1, Math.ceil(page.matched / CASE_PAGE_SIZE)) : 1;
  const current = Math.floor(view.offset / CASE_PAGE_SIZE) + 1;
  const toggle = (index: number) => {
    const next = new Set(open);
    if (next.has(index)) next.delete(index);
    else next.add(index);
    setOpen(next);
  };
  const columns = 6 + props.scorers.length;

  return (
    <div class="case-table-wrap">
      <form
        class="toolbar case-toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          onView({ ...view, q: search.trim(), offset: 0 });
        }}
      >
        <label>
          outcome
          <select name="status" value={view.status} onChange={(e) => onView({ ...view, status: (e.target as HTMLSelectElement).value as CaseView['status'], offset: 0 })}>
            <option value="">all</option>
            <option value="pass">pass</option>
            <option value="fail">fail</option>
            <option value="error">error</option>
          </select>
        </label>
        <label>
          search id, inputs, expected, output, error
          <input type="search" name="q" value={search} maxLength={200} placeholder="text…" onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Search</button>
        {view.q || view.status ? (
          <button type="button" onClick={() => onView({ status: '', q: '', offset: 0 })}>
            Clear
          </button>
        ) : null}
      </form>
      <ErrorBox error={load.error} />
      {page ? (
        <p class="case-count muted">
          {page.matched === 0
            ? 'No case matches.'
            : `Cases ${formatNumber(page.offset + 1)}–${formatNumber(page.offset + page.cases.length)} of ${formatNumber(page.matched)}${page.matched !== page.total ? ` matching (${formatNumber(page.total)} in the run)` : ''}`}
          {load.loading ? ' · loading…' : ''}
        </p>
      ) : (
        <p class="muted">Loading cases…</p>
      )}
      <table class="case-table" data-offset={page?.offset} aria-busy={load.loading}>
        <thead>
          <tr>
            <th class="num">#</th>
            <th>id</th>
            <th>result</th>
            {props.scorers.map((s) => (
              <th key={s} class="num">
                {s}
              </th>
            ))}
            <th>output</th>
            <th class="num">latency</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(page?.cases ?? []).map((c) => [
            <tr key={c.index} class="case-row" data-case-id={c.id} onClick={() => toggle(c.index)}>
              <td class="num muted">{formatNumber(c.index + 1)}</td>
              <td class="mono case-id">{c.id}</td>
              <td>
                <StatusBadge status={outcomeOf(c)} />
              </td>
              {props.scorers.map((s) => (
                <td key={s} class={`num ${c.scores[s]?.pass === false ? 'score-fail' : ''}`}>
                  {c.scores[s] ? formatNumber(c.scores[s].score) : '—'}
                </td>
              ))}
              <td class="case-output">{c.error !== null ? <span class="case-error">{c.error}</span> : (c.output ?? '')}</td>
              <td class="num">{formatDuration(c.latency_ms)}</td>
              <td>
                <button type="button" class="link-button" aria-expanded={open.has(c.index)} onClick={(e) => (e.stopPropagation(), toggle(c.index))}>
                  {open.has(c.index) ? 'Hide' : 'Details'}
                </button>
              </td>
            </tr>,
            open.has(c.index) ? (
              <tr key={`${c.index}-detail`} class="case-detail-row">
                <td colSpan={columns}>
                  <CaseDetail record={c} />
                </td>
              </tr>
            ) : null,
          ])}
        </tbody>
      </table>
      {page && page.matched > 0 ? (
        <div class="case-paging">
          <Pager
            label={`Page ${formatNumber(current)} of ${formatNumber(pages)}`}
            canPrevious={view.offset > 0}
            canNext={view.offset + CASE_PAGE_SIZE < page.matched}
            onPrevious={() => onView({ ...view, offset: Math.max(0, view.offset - CASE_PAGE_SIZE) })}
            onNext={() => onView({ ...view, offset: view.offset + CASE_PAGE_SIZE })}
          />
          <form
            class="jump-form"
            onSubmit={(e) => {
              e.preventDefault();
              const n = Math.min(pages, Math.max(1, Math.floor(Number(jump)) || 1));
              setJump('');
              onView({ ...view, offset: (n - 1) * CASE_PAGE_SIZE });
            }}
          >
            <label>
              go to page <input type="number" name="page" min={1} max={pages} value={jump} onInput={(e) => setJump((e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit">Go</button>
          </form>
        </div>
      ) : null}
    </div>
  );
}

/** Everything results.jsonl holds about one case. */
function CaseDetail({ record }: { record: CaseRecord }) {
  return (
    <div class="case-detail">
      <div>
        <h4>Input vars</h4>
        <pre>{asText(record.vars)}</pre>
      </div>
      <div>
        <h4>Expected</h4>
        <pre>{record.expected === null ? '—' : asText(record.expected)}</pre>
      </div>
      <div>
        <h4>Output</h4>
        <pre>{record.output ?? '—'}</pre>
      </div>
      <div>
        <h4>Scores</h4>
        {Object.keys(record.scores).length === 0 ? (
          <p class="muted">Not scored.</p>
        ) : (
          <table>
            <tbody>
              {Object.entries(record.scores).map(([name, s]) => (
                <tr key={name}>
                  <td>{name}</td>
                  <td class="num">{formatNumber(s.score)}</td>
                  <td>
                    <StatusBadge status={s.pass ? 'pass' : 'fail'} />
                  </td>
                  <td class="muted">{s.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p class="muted small-print">
          latency {formatDuration(record.latency_ms)}
          {record.tokens ? ` · tokens ${record.tokens.prompt} + ${record.tokens.completion} = ${record.tokens.total}` : ''}
        </p>
      </div>
      {record.error !== null ? (
        <div class="case-detail-wide">
          <h4>Error</h4>
          <pre class="case-error">{record.error}</pre>
        </div>
      ) : null}
    </div>
  );
}
