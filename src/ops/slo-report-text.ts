import type { AlertReport, SloReport, WindowReport } from '../obs/slo-math.ts';

/**
 * `evalops slo` for a terminal: one block per SLO with the SLI per window, the budget left and the
 * burn-rate alerts. A window with too few events says so instead of showing a ratio of nothing.
 */

const percent = (ratio: number, digits: number) => `${(ratio * 100).toFixed(digits)}%`;

/** Enough digits to tell 99.9% from 99.95%, without trailing zeros. */
const objectiveText = (ratio: number) => `${Number((ratio * 100).toPrecision(10))}%`;

const burnText = (burn: number | null) => (burn === null ? 'n/a' : `${burn.toFixed(burn >= 10 ? 1 : 2)}x`);

function windowRow(w: WindowReport, minEvents: number): string {
  const label = w.window.padEnd(5);
  if (w.status === 'insufficient_data') {
    return `  ${label} insufficient data: ${w.total} events, fewer than ${minEvents}`;
  }
  return `  ${label} SLI ${percent(w.sli!, 3).padStart(8)}  bad ${String(w.bad).padStart(8)} of ${String(w.total).padEnd(10)} burn ${burnText(w.burnRate)}`;
}

function alertRow(a: AlertReport): string {
  const state = a.status === 'firing' ? 'FIRING' : a.status === 'ok' ? 'ok' : 'insufficient data';
  return `  ${a.severity.padEnd(6)} ${`${a.burnRateThreshold}x`.padEnd(5)} over ${a.longWindow} and ${a.shortWindow}`.padEnd(34) + `${state} (${burnText(a.longBurnRate)} / ${burnText(a.shortBurnRate)})`;
}

/** One SLO as text. */
export function formatSloReport(report: SloReport): string {
  const headline =
    report.firing === 'none' ? 'no alert firing' : report.firing === 'page' ? 'PAGE alert firing' : 'TICKET alert firing';
  const budget =
    report.budget.remaining === null
      ? `error budget left: insufficient data (${report.full.total} events in ${report.window}, fewer than ${report.minEvents})`
      : `error budget left: ${percent(report.budget.remaining, 1)} (${report.budget.badEvents} bad of ${report.budget.allowedBadEvents!.toFixed(1)} allowed so far)`;
  return [
    `${report.name}: objective ${objectiveText(report.objective)} over ${report.window}, ${headline}`,
    ...report.windows.map((w) => windowRow(w, report.minEvents)),
    windowRow(report.full, report.minEvents),
    `  ${budget}`,
    '  burn-rate alerts (long / short window burn):',
    ...report.alerts.map((a) => `  ${alertRow(a)}`),
  ].join('\n');
}

/** Every SLO as text, separated by blank lines. */
export function formatSloReports(reports: readonly SloReport[]): string {
  return `${reports.map(formatSloReport).join('\n\n')}\n`;
}
