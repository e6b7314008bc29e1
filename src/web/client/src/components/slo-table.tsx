import { formatNumber, formatPercent } from '../format.ts';
import type { SloStatus, SloStatusReport, SloWindow } from '../ops-types.ts';
import { StatusBadge } from './status-badge.tsx';

/** How much of the error budget is left, as a bar and a percentage; overspent reads as such. */
export function BudgetBar({ remaining, insufficient }: { remaining: number | null; insufficient: boolean }) {
  if (insufficient || remaining === null) return <span class="muted" title="fewer events in the window than min_events in slo.yaml: not judged yet">too few events</span>;
  const width = Math.max(0, Math.min(1, remaining)) * 100;
  return (
    <div class="budget-cell" title={`${formatPercent(remaining, 1)} of the error budget left`}>
      <div class={`budget${remaining < 0.25 ? ' low' : ''}`} role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(width)}>
        <span style={{ width: `${width}%` }} />
      </div>
      <span class={remaining < 0 ? 'budget-text overspent' : 'budget-text'}>{remaining < 0 ? `overspent ${formatPercent(-remaining, 0)}` : formatPercent(remaining, 1)}</span>
    </div>
  );
}

function BurnCell({ w }: { w: SloWindow | undefined }) {
  if (!w) return <td class="num muted">—</td>;
  if (w.status === 'insufficient_data' || w.burnRate === null) {
    return (
      <td class="num muted" title={`${w.total} events: too few to judge`}>
        —
      </td>
    );
  }
  const hot = w.burnRate >= 1;
  return (
    <td class={`num${hot ? ' burn-hot' : ''}`} title={`${w.bad} bad of ${w.total}`}>
      {w.burnRate.toFixed(w.burnRate >= 10 ? 1 : 2)}×
    </td>
  );
}

function AlertCell({ slo }: { slo: SloStatus }) {
  const firing = slo.report.alerts.filter((a) => a.status === 'firing');
  if (firing.length) {
    return (
      <td>
        <StatusBadge status={slo.report.firing} />{' '}
        <span class="muted">
          {firing.map((a) => `${a.name} (${a.longWindow}/${a.shortWindow} over ${a.burnRateThreshold}×)`).join(', ')}
        </span>{' '}
        <span class="muted">runbook {slo.runbook_section}</span>
      </td>
    );
  }
  return (
    <td>
      <span class="badge badge-ok">none</span>
    </td>
  );
}

/** Each SLO: SLI over its window, objective, error budget left, burn rate per alert window, alert firing. */
export function SloTable({ report }: { report: SloStatusReport }) {
  const windows = report.slos[0]?.report.windows.map((w) => w.window) ?? [];
  return (
    <table class="slo-table">
      <thead>
        <tr>
          <th>SLO</th>
          <th class="num">SLI</th>
          <th class="num">objective</th>
          <th>error budget left</th>
          {windows.map((w) => (
            <th key={w} class="num" title={`burn rate over ${w}`}>
              burn {w}
            </th>
          ))}
          <th>alert</th>
        </tr>
      </thead>
      <tbody>
        {report.slos.map((slo) => {
          const full = slo.report.full;
          return (
            <tr key={slo.name} data-slo={slo.name}>
              <td>
                <strong>{slo.name}</strong>
                <div class="muted small">{slo.description}</div>
              </td>
              <td class="num" title={`${formatNumber(full.good)} good of ${formatNumber(full.total)} over ${slo.window}`}>
                {full.sli === null ? <span class="muted">—</span> : formatPercent(full.sli, 3)}
                <div class="muted small">{slo.window}</div>
              </td>
              <td class="num">{slo.objective_percent}%</td>
              <td>
                <BudgetBar remaining={slo.report.budget.remaining} insufficient={slo.report.budget.status === 'insufficient_data'} />
              </td>
              {windows.map((w) => (
                <BurnCell key={w} w={slo.report.windows.find((x) => x.window === w)} />
              ))}
              <AlertCell slo={slo} />
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
