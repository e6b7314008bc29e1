import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { getJson, query } from '../api.ts';
import { CompareScorers } from '../components/compare-scorers.tsx';
import { ErrorBox } from '../components/error-box.tsx';
import { FlippedCases } from '../components/flipped-cases.tsx';
import { datasetHref, promptHref, runHref, runLabel, shortId, shortSnapshot } from '../eval-display.ts';
import type { BriefRun, Comparison, RunList } from '../eval-types.ts';
import { formatNumber, formatTime } from '../format.ts';
import { useLoad } from '../hooks.ts';

/** Flipped cases asked for: the first of them carry both outputs. */
const MAX_FLIPPED = 1000;

/**
 * Two runs compared case by case: pick a base and a head (the URL holds `?base=&head=`), then the
 * per-scorer deltas with their interval, McNemar's test and a verdict in words, and the flipped
 * cases with both outputs side by side.
 */
export function ComparePage() {
  const { query: params, path, route } = useLocation();
  const base = params.base ?? '';
  const head = params.head ?? '';
  const runs = useLoad(() => getJson<RunList>('/v1/evaluations?status=succeeded,failed&limit=200'), 'compare-runs');
  const [pickBase, setPickBase] = useState(base);
  const [pickHead, setPickHead] = useState(head);
  useEffect(() => setPickBase(base), [base]);
  useEffect(() => setPickHead(head), [head]);

  const url = base && head ? `/v1/evaluations/compare${query({ base, head, max_flipped: MAX_FLIPPED })}` : '';
  const comparison = useLoad(() => (url ? getJson<Comparison>(url) : Promise.resolve(undefined)), url);
  const options = runs.data?.runs ?? [];
  const labelled = (id: string) => options.some((r) => r.run_id === id);

  return (
    <section class="eval-page">
      <h1>Compare runs</h1>
      <form
        class="toolbar compare-pickers"
        onSubmit={(e) => {
          e.preventDefault();
          route(`${path}${query({ base: pickBase, head: pickHead })}`);
        }}
      >
        {(
          [
            ['base', pickBase, setPickBase],
            ['head', pickHead, setPickHead],
          ] as const
        ).map(([name, value, set]) => (
          <label key={name}>
            {name === 'base' ? 'base (before)' : 'head (after)'}
            <select name={name} value={value} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
              <option value="">choose a run…</option>
              {value && !labelled(value) ? <option value={value}>{value}</option> : null}
              {options.map((r) => (
                <option key={r.run_id} value={r.run_id}>
                  {runLabel(r)} · {formatTime(r.created_at)}
                </option>
              ))}
            </select>
          </label>
        ))}
        <button type="button" onClick={() => (setPickBase(pickHead), setPickHead(pickBase))} disabled={!pickBase && !pickHead}>
          Swap
        </button>
        <button type="submit" class="primary" disabled={!pickBase || !pickHead}>
          Compare
        </button>
      </form>
      <ErrorBox error={runs.error} />
      {!url ? <p class="muted">Choose two finished runs, ideally of the same dataset: cases are paired by id.</p> : null}
      <ErrorBox error={comparison.error} />
      {url && comparison.loading && !comparison.data ? <p class="muted">Comparing…</p> : null}
      {comparison.data ? <ComparisonView comparison={comparison.data} /> : null}
    </section>
  );
}

function ComparisonView({ comparison: c }: { comparison: Comparison }) {
  return (
    <>
      <div class="panel compare-runs">
        <RunBrief role="base" run={c.base} />
        <RunBrief role="head" run={c.head} />
        <p class="compare-pairing">
          {formatNumber(c.pairedCases)} paired case(s)
          {c.onlyInBase ? `, ${formatNumber(c.onlyInBase)} only in base` : ''}
          {c.onlyInHead ? `, ${formatNumber(c.onlyInHead)} only in head` : ''}.
        </p>
        {!c.same_dataset ? <p class="warn">The runs used different dataset snapshots: only the cases with the same id are compared.</p> : null}
      </div>
      <div class="panel">
        <h2>Per-scorer deltas (head − base)</h2>
        <CompareScorers scorers={c.scorers} />
      </div>
      <div class="panel">
        <h2>Flipped cases</h2>
        <FlippedCases flipped={c.flipped} total={c.flippedTotal} baseId={c.base.run_id} headId={c.head.run_id} />
      </div>
    </>
  );
}

function RunBrief({ role, run }: { role: 'base' | 'head'; run: BriefRun }) {
  return (
    <div class={`run-brief run-brief-${role}`}>
      <span class="run-brief-role">{role}</span>
      <a class="mono" href={runHref(run.run_id)}>
        {shortId(run.run_id)}
      </a>
      <a href={promptHref(run.prompt_version)}>{run.prompt_version}</a>
      <span>{run.model}</span>
      <span class="muted">{run.mode}</span>
      <a class="mono muted" href={datasetHref(run.data_snapshot_id)}>
        {shortSnapshot(run.data_snapshot_id)}
      </a>
    </div>
  );
}
