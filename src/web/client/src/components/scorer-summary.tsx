import type { RunSummary } from '../eval-types.ts';
import { formatDuration, formatNumber, formatPercent } from '../format.ts';
import { StatusBadge } from './status-badge.tsx';

/** The figures of a run's summary.json: counts, latency, tokens, then one row per scorer with its thresholds. */
export function ScorerSummary({ summary }: { summary: RunSummary }) {
  const failed = summary.cases - summary.passed - summary.errors;
  const checks = summary.thresholds?.checks ?? [];
  return (
    <>
      <div class="summary-figures">
        <Figure label="cases" value={formatNumber(summary.cases)} />
        <Figure label="passed" value={formatNumber(summary.passed)} tone="ok" />
        <Figure label="failed" value={formatNumber(failed)} tone={failed > 0 ? 'bad' : undefined} />
        <Figure label="errors" value={formatNumber(summary.errors)} tone={summary.errors > 0 ? 'bad' : undefined} />
        <Figure label="pass rate" value={formatPercent(summary.pass_rate, 1)} />
        <Figure label="latency p50 / p95" value={`${formatDuration(summary.latency_ms?.p50)} / ${formatDuration(summary.latency_ms?.p95)}`} />
        <Figure label="tokens" value={formatNumber(summary.tokens?.total)} />
        {summary.execution ? <Figure label="duration" value={formatDuration(summary.execution.duration_ms)} /> : null}
        {summary.execution ? <Figure label="answers from record / provider" value={`${formatNumber(summary.execution.cached)} / ${formatNumber(summary.execution.provider_calls)}`} /> : null}
      </div>
      <table class="scorer-table">
        <thead>
          <tr>
            <th>scorer</th>
            <th>type</th>
            <th class="num">scored</th>
            <th class="num">mean</th>
            <th class="num">pass rate</th>
            <th class="num">passed</th>
            <th class="num">failed</th>
            <th>thresholds</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(summary.scorers).map(([name, s]) => (
            <tr key={name} data-scorer={name}>
              <td>
                <strong>{name}</strong>
              </td>
              <td>{s.type}</td>
              <td class="num">{formatNumber(s.scored)}</td>
              <td class="num">{formatNumber(s.mean)}</td>
              <td class="num">{formatPercent(s.pass_rate, 1)}</td>
              <td class="num">{formatNumber(s.passed)}</td>
              <td class="num">{formatNumber(s.failed)}</td>
              <td>
                {checks
                  .filter((c) => c.scorer === name)
                  .map((c) => (
                    <span key={c.metric} class="threshold">
                      <StatusBadge status={c.pass ? 'pass' : 'fail'} /> {c.metric} ≥ {formatNumber(c.min)} (got {c.metric === 'pass_rate' ? formatPercent(c.actual, 1) : formatNumber(c.actual)})
                    </span>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Figure(props: { label: string; value: string; tone?: 'ok' | 'bad' | undefined }) {
  return (
    <div class={`summary-figure${props.tone ? ` summary-${props.tone}` : ''}`}>
      <div class="summary-value">{props.value}</div>
      <div class="summary-label">{props.label}</div>
    </div>
  );
}
