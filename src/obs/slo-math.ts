/**
 * SLO arithmetic over event counts, with no I/O: the SLI per window, the error budget left and the
 * burn rates of the SRE Workbook's multiwindow, multi-burn-rate alerts. `evalops slo` and
 * `GET /v1/slo` feed it counts read from the database; the Prometheus rules in src/ops/slo-rules.ts
 * encode the same thresholds, so both say the same thing about the same traffic.
 */

/** The windows the alert pairs need, shortest first. */
export const ALERT_WINDOWS = ['5m', '30m', '1h', '6h', '3d'] as const;
export type AlertWindow = (typeof ALERT_WINDOWS)[number];

/** Seconds in each alert window, for the queries that count events over them. */
export const ALERT_WINDOW_SECONDS: Readonly<Record<AlertWindow, number>> = Object.freeze({
  '5m': 300,
  '30m': 1800,
  '1h': 3600,
  '6h': 21_600,
  '3d': 259_200,
});

export type AlertSeverity = 'page' | 'ticket';

/** One multiwindow burn-rate alert: it fires when both windows burn faster than `burnRate`. */
export interface BurnRateAlertSpec {
  readonly name: string;
  readonly severity: AlertSeverity;
  readonly burnRate: number;
  readonly longWindow: AlertWindow;
  /** A twelfth of the long window: it makes the alert stop soon after the errors stop. */
  readonly shortWindow: AlertWindow;
  /** Share of a 30-day budget spent when the long window burns at `burnRate` (the Workbook's rationale). */
  readonly budgetSpentIn30d: number;
}

/** The SRE Workbook's recommended pairs (chapter 5, "Alerting on SLOs", multiwindow, multi-burn-rate alerts). */
export const BURN_RATE_ALERTS: readonly BurnRateAlertSpec[] = Object.freeze([
  { name: 'page-1h-5m', severity: 'page', burnRate: 14.4, longWindow: '1h', shortWindow: '5m', budgetSpentIn30d: 0.02 },
  { name: 'page-6h-30m', severity: 'page', burnRate: 6, longWindow: '6h', shortWindow: '30m', budgetSpentIn30d: 0.05 },
  { name: 'ticket-3d-6h', severity: 'ticket', burnRate: 1, longWindow: '3d', shortWindow: '6h', budgetSpentIn30d: 0.1 },
]);

/** Good and total events in one window; bad = total - good. */
export interface EventCounts {
  readonly good: number;
  readonly total: number;
}

/** The counts one SLO report needs: each alert window and the SLO's full window. */
export interface SloCounts {
  readonly windows: Readonly<Record<AlertWindow, EventCounts>>;
  readonly full: EventCounts;
}

/** The parts of an SLO definition the arithmetic uses (a `SloDefinition` fits). */
export interface SloTarget {
  readonly name: string;
  /** As a ratio, e.g. 0.999. */
  readonly objective: number;
  /** 1 - objective, kept separately so float noise does not creep in. */
  readonly errorBudget: number;
  /** The SLO's full window, e.g. `28d`. */
  readonly window: string;
  readonly minEvents: number;
}

export type WindowStatus = 'ok' | 'insufficient_data';

/** The SLI in one window. Ratios are null when the window has too few events to mean anything. */
export interface WindowReport {
  readonly window: string;
  readonly status: WindowStatus;
  readonly good: number;
  readonly bad: number;
  readonly total: number;
  /** good / total. */
  readonly sli: number | null;
  /** bad / total. */
  readonly errorRatio: number | null;
  /** errorRatio / errorBudget: 1 spends the budget exactly over the SLO window. */
  readonly burnRate: number | null;
}

/** The error budget of the full window. */
export interface BudgetReport {
  readonly status: WindowStatus;
  /** 1 - objective. */
  readonly errorBudget: number;
  /** Bad events the objective allows for the traffic seen so far (total × budget). */
  readonly allowedBadEvents: number | null;
  readonly badEvents: number;
  /** 1 - bad / allowed: 1 untouched, 0 spent, negative overspent. */
  readonly remaining: number | null;
}

export type AlertStatus = 'firing' | 'ok' | 'insufficient_data';

/** Whether one burn-rate alert would fire now. */
export interface AlertReport {
  readonly name: string;
  readonly severity: AlertSeverity;
  readonly burnRateThreshold: number;
  readonly longWindow: AlertWindow;
  readonly shortWindow: AlertWindow;
  readonly longBurnRate: number | null;
  readonly shortBurnRate: number | null;
  readonly status: AlertStatus;
}

/** Everything `evalops slo` shows for one SLO. */
export interface SloReport {
  readonly name: string;
  readonly objective: number;
  readonly errorBudget: number;
  readonly window: string;
  readonly minEvents: number;
  /** The alert windows, shortest first. */
  readonly windows: readonly WindowReport[];
  readonly full: WindowReport;
  readonly budget: BudgetReport;
  readonly alerts: readonly AlertReport[];
  /** The most severe alert firing now, or `none`. */
  readonly firing: AlertSeverity | 'none';
}

/** Checks that counts are usable: finite, not negative, good not above total. */
function checkCounts(window: string, counts: EventCounts): void {
  const { good, total } = counts;
  if (!Number.isFinite(good) || !Number.isFinite(total) || good < 0 || total < 0) {
    throw new RangeError(`window ${window}: counts must be finite and not negative (good=${good}, total=${total})`);
  }
  if (good > total) throw new RangeError(`window ${window}: good (${good}) exceeds total (${total})`);
}

/** The error ratio divided by the error budget: how many times faster than sustainable the budget burns. */
export function burnRate(errorRatio: number, errorBudget: number): number {
  return errorRatio / errorBudget;
}

/** The SLI, error ratio and burn rate of one window, or `insufficient_data` below `minEvents` events. */
export function evaluateWindow(window: string, counts: EventCounts, errorBudget: number, minEvents: number): WindowReport {
  checkCounts(window, counts);
  const bad = counts.total - counts.good;
  if (counts.total < minEvents) {
    return { window, status: 'insufficient_data', good: counts.good, bad, total: counts.total, sli: null, errorRatio: null, burnRate: null };
  }
  const errorRatio = bad / counts.total;
  return {
    window,
    status: 'ok',
    good: counts.good,
    bad,
    total: counts.total,
    sli: counts.good / counts.total,
    errorRatio,
    burnRate: burnRate(errorRatio, errorBudget),
  };
}

/** The error budget left in the full window, as a fraction of the budget the traffic so far allows. */
export function evaluateBudget(full: WindowReport, errorBudget: number): BudgetReport {
  if (full.status === 'insufficient_data') {
    return { status: 'insufficient_data', errorBudget, allowedBadEvents: null, badEvents: full.bad, remaining: null };
  }
  const allowedBadEvents = full.total * errorBudget;
  return { status: 'ok', errorBudget, allowedBadEvents, badEvents: full.bad, remaining: 1 - full.bad / allowedBadEvents };
}

/**
 * Whether one alert fires: both windows need enough events, and both error ratios must exceed
 * `burnRate × errorBudget`. The comparison is written the way the Prometheus rule writes it
 * (`ratio > 14.4 * 0.001`), strictly greater, so the two agree at the boundary.
 */
export function evaluateAlert(spec: BurnRateAlertSpec, long: WindowReport, short: WindowReport, errorBudget: number): AlertReport {
  const base = {
    name: spec.name,
    severity: spec.severity,
    burnRateThreshold: spec.burnRate,
    longWindow: spec.longWindow,
    shortWindow: spec.shortWindow,
    longBurnRate: long.burnRate,
    shortBurnRate: short.burnRate,
  };
  if (long.errorRatio === null || short.errorRatio === null) return { ...base, status: 'insufficient_data' };
  const threshold = spec.burnRate * errorBudget;
  const firing = long.errorRatio > threshold && short.errorRatio > threshold;
  return { ...base, status: firing ? 'firing' : 'ok' };
}

/** The full report of one SLO from its counts. */
export function evaluateSlo(slo: SloTarget, counts: SloCounts): SloReport {
  const byWindow = new Map<AlertWindow, WindowReport>();
  for (const window of ALERT_WINDOWS) {
    byWindow.set(window, evaluateWindow(window, counts.windows[window], slo.errorBudget, slo.minEvents));
  }
  const full = evaluateWindow(slo.window, counts.full, slo.errorBudget, slo.minEvents);
  const alerts = BURN_RATE_ALERTS.map((spec) => evaluateAlert(spec, byWindow.get(spec.longWindow)!, byWindow.get(spec.shortWindow)!, slo.errorBudget));
  const firingSeverities = new Set(alerts.filter((a) => a.status === 'firing').map((a) => a.severity));
  return {
    name: slo.name,
    objective: slo.objective,
    errorBudget: slo.errorBudget,
    window: slo.window,
    minEvents: slo.minEvents,
    windows: ALERT_WINDOWS.map((w) => byWindow.get(w)!),
    full,
    budget: evaluateBudget(full, slo.errorBudget),
    alerts,
    firing: firingSeverities.has('page') ? 'page' : firingSeverities.has('ticket') ? 'ticket' : 'none',
  };
}
