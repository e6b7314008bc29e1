import { pValue, signed, verdictOf } from '../eval-display.ts';
import type { ScorerComparison } from '../eval-types.ts';
import { formatNumber, formatPercent } from '../format.ts';

/** Per-scorer deltas (head − base) with the interval, McNemar's test and the verdict in words. */
export function CompareScorers({ scorers }: { scorers: ScorerComparison[] }) {
  if (scorers.length === 0) return <p class="muted">The runs share no scorer.</p>;
  return (
    <>
      <table class="compare-table">
        <thead>
          <tr>
            <th>scorer</th>
            <th class="num">cases</th>
            <th class="num">base mean</th>
            <th class="num">head mean</th>
            <th class="num">Δ mean</th>
            <th>interval</th>
            <th class="num">base pass</th>
            <th class="num">head pass</th>
            <th class="num">pass→fail</th>
            <th class="num">fail→pass</th>
            <th class="num">McNemar</th>
          </tr>
        </thead>
        <tbody>
          {scorers.map((s) => {
            const tone = verdictOf(s).tone;
            return (
              <tr key={s.scorer} data-scorer={s.scorer}>
                <td>
                  <strong>{s.scorer}</strong>
                </td>
                <td class="num">{formatNumber(s.pairedCases)}</td>
                <td class="num">{formatNumber(s.baseMean)}</td>
                <td class="num">{formatNumber(s.headMean)}</td>
                <td class={`num delta-cell ${tone === 'better' ? 'delta-pos' : tone === 'worse' ? 'delta-neg' : ''}`}>{signed(s.meanDelta)}</td>
                <td class="nowrap-cell">{s.ci ? `${signed(s.ci.lower)} … ${signed(s.ci.upper)} (${Math.round(s.ci.confidence * 100)}%, ${s.ci.method})` : '—'}</td>
                <td class="num">{formatPercent(s.basePassRate, 1)}</td>
                <td class="num">{formatPercent(s.headPassRate, 1)}</td>
                <td class={`num ${s.mcnemar.passToFail > 0 ? 'delta-neg' : ''}`}>{formatNumber(s.mcnemar.passToFail)}</td>
                <td class={`num ${s.mcnemar.failToPass > 0 ? 'delta-pos' : ''}`}>{formatNumber(s.mcnemar.failToPass)}</td>
                <td class="num nowrap-cell">{pValue(s.mcnemar.exactP)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <ul class="verdicts">
        {scorers.map((s) => {
          const verdict = verdictOf(s);
          return (
            <li key={s.scorer} class={`verdict verdict-${verdict.tone}`} data-scorer={s.scorer}>
              <strong>{s.scorer}</strong>: {verdict.text}
            </li>
          );
        })}
      </ul>
    </>
  );
}
