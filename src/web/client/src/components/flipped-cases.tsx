import { useEffect, useState } from 'preact/hooks';
import { asText, runHref } from '../eval-display.ts';
import type { FlippedCase } from '../eval-types.ts';
import { formatNumber } from '../format.ts';
import { Pager } from './pager.tsx';
import { StatusBadge } from './status-badge.tsx';
import { TextDiff } from './text-diff.tsx';

const PER_PAGE = 20;

/**
 * The cases that changed between pass and fail, regressions first (as the API orders them), each
 * with its inputs, the expected answer and both outputs side by side, the head's changes marked.
 */
export function FlippedCases(props: { flipped: FlippedCase[]; total: number; baseId: string; headId: string }) {
  const [page, setPage] = useState(0);
  useEffect(() => setPage(0), [props.flipped]);
  if (props.flipped.length === 0) return <p class="muted">No case changed between pass and fail.</p>;
  const shown = props.flipped.slice(page * PER_PAGE, (page + 1) * PER_PAGE);
  const pages = Math.ceil(props.flipped.length / PER_PAGE);
  return (
    <>
      <p class="muted">
        {formatNumber(props.total)} flipped case(s)
        {props.total > props.flipped.length ? `; the first ${formatNumber(props.flipped.length)} are listed` : ''}. Regressions (pass → fail) come first.
      </p>
      <ol class="flipped-list" start={page * PER_PAGE + 1}>
        {shown.map((f) => (
          <li key={`${f.id}|${f.scorer}`} class={`flipped flipped-${f.to === 'fail' ? 'regression' : 'fix'}`} data-case-id={f.id}>
            <div class="flipped-head">
              <span class="mono flipped-id">{f.id}</span>
              <span class="muted">{f.scorer}</span>
              <StatusBadge status={f.from} /> → <StatusBadge status={f.to} />
              <span class="muted">
                score {formatNumber(f.baseScore)} → {formatNumber(f.headScore)}
              </span>
              <span class="flipped-links">
                <a href={`${runHref(props.baseId)}?q=${encodeURIComponent(f.id)}`}>in base</a> · <a href={`${runHref(props.headId)}?q=${encodeURIComponent(f.id)}`}>in head</a>
              </span>
            </div>
            {f.base && f.head ? (
              <>
                <div class="flipped-inputs">
                  <div>
                    <h4>Input vars</h4>
                    <pre>{asText(f.vars)}</pre>
                  </div>
                  <div>
                    <h4>Expected</h4>
                    <pre>{f.expected === null || f.expected === undefined ? '—' : asText(f.expected)}</pre>
                  </div>
                </div>
                <div class="side-by-side">
                  <div class="side side-base">
                    <h4>Base output</h4>
                    <pre>{f.base.error !== null ? `error: ${f.base.error}` : (f.base.output ?? '—')}</pre>
                  </div>
                  <div class="side side-head">
                    <h4>Head output (changes marked)</h4>
                    {f.head.error !== null ? <pre class="case-error">error: {f.head.error}</pre> : <TextDiff before={f.base.output ?? ''} after={f.head.output ?? ''} mode="words" label={`head output of ${f.id}`} />}
                  </div>
                </div>
                {f.truncated ? <p class="muted small-print">An output was cut at 2,000 characters; the run files hold all of it.</p> : null}
              </>
            ) : (
              <p class="muted small-print">Outputs are not attached to this case (only the first 1,000 flipped cases carry them).</p>
            )}
          </li>
        ))}
      </ol>
      {pages > 1 ? <Pager label={`Page ${page + 1} of ${pages}`} canPrevious={page > 0} canNext={page + 1 < pages} onPrevious={() => setPage(page - 1)} onNext={() => setPage(page + 1)} /> : null}
    </>
  );
}
