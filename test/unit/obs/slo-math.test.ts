import { describe, expect, it } from 'vitest';
import { BURN_RATE_ALERTS, burnRate, evaluateSlo, evaluateWindow, type SloCounts, type SloTarget } from '../../../src/obs/slo-math.ts';

// Every expected figure below is worked out by hand in the comment beside it, never by calling the
// code under test.

const api: SloTarget = { name: 'api-availability', objective: 0.999, errorBudget: 0.001, window: '28d', minEvents: 10 };
const jobs: SloTarget = { name: 'job-success', objective: 0.99, errorBudget: 0.01, window: '28d', minEvents: 10 };

const counts = (windows: Record<'5m' | '30m' | '1h' | '6h' | '3d', [good: number, total: number]>, full: [good: number, total: number]): SloCounts => ({
  windows: Object.fromEntries(Object.entries(windows).map(([w, [good, total]]) => [w, { good, total }])) as SloCounts['windows'],
  full: { good: full[0], total: full[1] },
});

describe('evaluateSlo', () => {
  it('a fast burn fires both page pairs and the ticket', () => {
    const report = evaluateSlo(
      api,
      counts({ '5m': [950, 1000], '30m': [5700, 6000], '1h': [11700, 12000], '6h': [71500, 72000], '3d': [863000, 864000] }, [8060000, 8064000]),
    );
    const [w5m, w30m, w1h, w6h, w3d] = report.windows;
    // 5m: 50 bad of 1000 -> SLI 0.95, error ratio 0.05, burn 0.05 / 0.001 = 50
    expect(w5m).toMatchObject({ window: '5m', status: 'ok', good: 950, bad: 50, total: 1000 });
    expect(w5m!.sli).toBeCloseTo(0.95, 12);
    expect(w5m!.errorRatio).toBeCloseTo(0.05, 12);
    expect(w5m!.burnRate).toBeCloseTo(50, 9);
    // 30m: 300 of 6000 -> 0.05 -> burn 50
    expect(w30m!.burnRate).toBeCloseTo(50, 9);
    // 1h: 300 of 12000 -> 0.025 -> burn 25
    expect(w1h!.errorRatio).toBeCloseTo(0.025, 12);
    expect(w1h!.burnRate).toBeCloseTo(25, 9);
    // 6h: 500 of 72000 -> 0.0069444 -> burn 6.9444
    expect(w6h!.errorRatio).toBeCloseTo(0.0069444444, 9);
    expect(w6h!.burnRate).toBeCloseTo(6.9444444, 6);
    // 3d: 1000 of 864000 -> 0.0011574 -> burn 1.1574
    expect(w3d!.burnRate).toBeCloseTo(1.1574074, 6);
    // 28d: 4000 bad of 8064000; the budget allows 8064000 × 0.001 = 8064; left: 1 - 4000/8064 = 0.5039683
    expect(report.full).toMatchObject({ window: '28d', status: 'ok', bad: 4000, total: 8064000 });
    expect(report.full.burnRate).toBeCloseTo(0.4960317, 6);
    expect(report.budget.status).toBe('ok');
    expect(report.budget.allowedBadEvents).toBeCloseTo(8064, 6);
    expect(report.budget.badEvents).toBe(4000);
    expect(report.budget.remaining).toBeCloseTo(0.5039683, 6);
    // 25 > 14.4 and 50 > 14.4; 6.94 > 6 and 50 > 6; 1.157 > 1 and 6.94 > 1
    expect(report.alerts.map((a) => [a.name, a.status])).toEqual([
      ['page-1h-5m', 'firing'],
      ['page-6h-30m', 'firing'],
      ['ticket-3d-6h', 'firing'],
    ]);
    expect(report.firing).toBe('page');
  });

  it('a steady 2x burn fires only the ticket', () => {
    // error ratio 0.002 in every window (2 per 1000) -> burn 2: above 1, under 6 and 14.4
    const report = evaluateSlo(
      api,
      counts({ '5m': [998, 1000], '30m': [5988, 6000], '1h': [11976, 12000], '6h': [71856, 72000], '3d': [862272, 864000] }, [8056000, 8064000]),
    );
    for (const w of report.windows) expect(w.burnRate).toBeCloseTo(2, 9);
    expect(report.alerts.map((a) => a.status)).toEqual(['ok', 'ok', 'firing']);
    expect(report.firing).toBe('ticket');
    // 8000 bad of the 8064 allowed: 64 / 8064 = 0.0079365 of the budget left
    expect(report.budget.remaining).toBeCloseTo(0.0079365, 6);
  });

  it('an overspent budget reads negative', () => {
    // 20 bad of 10000; allowed 10000 × 0.001 = 10; left 1 - 20/10 = -1
    const quiet: [number, number] = [1000, 1000];
    const report = evaluateSlo(api, counts({ '5m': quiet, '30m': quiet, '1h': quiet, '6h': quiet, '3d': quiet }, [9980, 10000]));
    expect(report.budget.remaining).toBeCloseTo(-1, 12);
    expect(report.full.burnRate).toBeCloseTo(2, 12);
    expect(report.firing).toBe('none');
  });

  it('low traffic: windows under min_events show no ratio and their alerts never fire', () => {
    const report = evaluateSlo(
      jobs,
      // 5m: 3 events (all bad), 30m: 9 events, both under 10. 1h: 5 bad of 20 -> 0.25 -> burn 25;
      // 6h: 10 of 50 -> 0.2 -> burn 20; 3d: 10 of 200 -> 0.05 -> burn 5. Full window: 9 events.
      counts({ '5m': [0, 3], '30m': [5, 9], '1h': [15, 20], '6h': [40, 50], '3d': [190, 200] }, [5, 9]),
    );
    const [w5m, w30m, w1h] = report.windows;
    expect(w5m).toEqual({ window: '5m', status: 'insufficient_data', good: 0, bad: 3, total: 3, sli: null, errorRatio: null, burnRate: null });
    expect(w30m!.status).toBe('insufficient_data');
    expect(w30m!.sli).toBeNull();
    expect(w1h!.burnRate).toBeCloseTo(25, 9);
    // The 1h window burns at 25x, yet the page pairs lack their short windows.
    expect(report.alerts.map((a) => [a.name, a.status])).toEqual([
      ['page-1h-5m', 'insufficient_data'],
      ['page-6h-30m', 'insufficient_data'],
      ['ticket-3d-6h', 'firing'], // 5 > 1 and 20 > 1
    ]);
    expect(report.firing).toBe('ticket');
    expect(report.budget).toEqual({ status: 'insufficient_data', errorBudget: 0.01, allowedBadEvents: null, badEvents: 4, remaining: null });
  });

  it('no traffic at all: nothing is shown as a ratio and nothing fires', () => {
    const none: [number, number] = [0, 0];
    const report = evaluateSlo(api, counts({ '5m': none, '30m': none, '1h': none, '6h': none, '3d': none }, none));
    expect(report.windows.every((w) => w.status === 'insufficient_data' && w.sli === null)).toBe(true);
    expect(report.alerts.every((a) => a.status === 'insufficient_data')).toBe(true);
    expect(report.firing).toBe('none');
  });

  it('the threshold is strict and applies to both windows', () => {
    const rest: [number, number] = [10, 10];
    const withHour = (good: number) => counts({ '5m': [80, 100], '30m': rest, '1h': [good, 1000], '6h': rest, '3d': rest }, rest);
    // 1h: 145 bad of 1000 = 0.145 > 14.4 × 0.01 = 0.144 (5m: 20 of 100 = 0.2 > 0.144) -> fires
    expect(evaluateSlo(jobs, withHour(855)).alerts[0]!.status).toBe('firing');
    // 1h: 143 bad of 1000 = 0.143 < 0.144 -> does not fire although the 5m window burns at 20x
    const under = evaluateSlo(jobs, withHour(857));
    expect(under.alerts[0]!.status).toBe('ok');
    expect(under.firing).toBe('none');
  });

  it('lists the windows shortest first and carries the objective', () => {
    const one: [number, number] = [10, 10];
    const report = evaluateSlo(api, counts({ '5m': one, '30m': one, '1h': one, '6h': one, '3d': one }, one));
    expect(report.windows.map((w) => w.window)).toEqual(['5m', '30m', '1h', '6h', '3d']);
    expect(report).toMatchObject({ name: 'api-availability', objective: 0.999, errorBudget: 0.001, window: '28d', minEvents: 10 });
    // 10 good of 10: SLI 1, burn 0
    expect(report.full.sli).toBe(1);
    expect(report.budget.remaining).toBe(1);
  });
});

describe('evaluateWindow', () => {
  it('counts a window with exactly min_events events and refuses one fewer', () => {
    expect(evaluateWindow('5m', { good: 9, total: 10 }, 0.01, 10).status).toBe('ok');
    expect(evaluateWindow('5m', { good: 9, total: 9 }, 0.01, 10).status).toBe('insufficient_data');
  });

  it('rejects counts that cannot be', () => {
    expect(() => evaluateWindow('1h', { good: 11, total: 10 }, 0.01, 1)).toThrow(/1h: good \(11\) exceeds total \(10\)/);
    expect(() => evaluateWindow('1h', { good: -1, total: 10 }, 0.01, 1)).toThrow(RangeError);
    expect(() => evaluateWindow('1h', { good: 1, total: Number.NaN }, 0.01, 1)).toThrow(RangeError);
  });
});

describe('burn-rate constants', () => {
  it('burnRate divides the error ratio by the budget', () => {
    // 1% errors against a 0.1% budget burn 10 times too fast
    expect(burnRate(0.01, 0.001)).toBeCloseTo(10, 12);
  });

  it('match the SRE Workbook pairs: 14.4x 1h/5m, 6x 6h/30m page; 1x 3d/6h ticket', () => {
    expect(BURN_RATE_ALERTS.map((a) => [a.severity, a.burnRate, a.longWindow, a.shortWindow])).toEqual([
      ['page', 14.4, '1h', '5m'],
      ['page', 6, '6h', '30m'],
      ['ticket', 1, '3d', '6h'],
    ]);
    // Budget spent over the long window at that rate, of a 720-hour (30-day) budget:
    // 14.4 × 1 / 720 = 0.02; 6 × 6 / 720 = 0.05; 1 × 72 / 720 = 0.1
    expect(BURN_RATE_ALERTS.map((a) => a.budgetSpentIn30d)).toEqual([0.02, 0.05, 0.1]);
  });
});
