import { describe, expect, it } from 'vitest';
import { evaluateSlo, type SloTarget } from '../../../src/obs/slo-math.ts';
import { formatSloReport, formatSloReports } from '../../../src/ops/slo-report-text.ts';

const jobs: SloTarget = { name: 'job-success', objective: 0.99, errorBudget: 0.01, window: '28d', minEvents: 10 };
const c = (good: number, total: number) => ({ good, total });

describe('formatSloReport', () => {
  it('says "insufficient data" where a window has too few events, and marks the firing alert', () => {
    const report = evaluateSlo(jobs, {
      windows: { '5m': c(0, 3), '30m': c(5, 9), '1h': c(15, 20), '6h': c(40, 50), '3d': c(190, 200) },
      full: c(5, 9),
    });
    expect(formatSloReport(report)).toBe(
      [
        'job-success: objective 99% over 28d, TICKET alert firing',
        '  5m    insufficient data: 3 events, fewer than 10',
        '  30m   insufficient data: 9 events, fewer than 10',
        '  1h    SLI  75.000%  bad        5 of 20         burn 25.0x',
        '  6h    SLI  80.000%  bad       10 of 50         burn 20.0x',
        '  3d    SLI  95.000%  bad       10 of 200        burn 5.00x',
        '  28d   insufficient data: 9 events, fewer than 10',
        '  error budget left: insufficient data (9 events in 28d, fewer than 10)',
        '  burn-rate alerts (long / short window burn):',
        '    page   14.4x over 1h and 5m     insufficient data (25.0x / n/a)',
        '    page   6x    over 6h and 30m    insufficient data (20.0x / n/a)',
        '    ticket 1x    over 3d and 6h     FIRING (5.00x / 20.0x)',
      ].join('\n'),
    );
  });

  it('shows the budget left of a healthy SLO and no alert', () => {
    // 28d: 2 bad of 1000, 10 allowed (1000 × 0.01): 1 - 2/10 = 80% left.
    const quiet = c(100, 100);
    const text = formatSloReports([evaluateSlo(jobs, { windows: { '5m': quiet, '30m': quiet, '1h': quiet, '6h': quiet, '3d': quiet }, full: c(998, 1000) })]);
    expect(text.split('\n')[0]).toBe('job-success: objective 99% over 28d, no alert firing');
    expect(text).toContain('  error budget left: 80.0% (2 bad of 10.0 allowed so far)');
    expect(text).toContain('    page   14.4x over 1h and 5m     ok (0.00x / 0.00x)');
    expect(text.endsWith('\n')).toBe(true);
  });
});
