import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { defaultSloConfig, parseSloConfig, type SloConfig } from '../../../src/obs/slo-config.ts';
import { generateSloRules, renderSloRulesYaml, type AlertingRule } from '../../../src/ops/slo-rules.ts';
import { runPromtool } from './promtool.ts';

// The generated rules go through Prometheus' own checker and rule unit tester: series that burn the
// budget must fire the page alert at the minute worked out below, series that do not must fire nothing.

let dir: string;
const config = defaultSloConfig();

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'evalops-slo-rules-'));
  writeFileSync(path.join(dir, 'rules.yml'), renderSloRulesYaml(config));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function alertRule(cfg: SloConfig, name: string): AlertingRule {
  for (const group of generateSloRules(cfg).groups) {
    for (const rule of group.rules) if ('alert' in rule && rule.alert === name) return rule;
  }
  throw new Error(`no alert ${name}`);
}

/** The alert as promtool reports it: the rule's labels plus the labels of the recorded series. */
function expectedAlert(name: string, slo: string) {
  const rule = alertRule(config, name);
  return { exp_labels: { ...rule.labels, slo, service: 'evalops' }, exp_annotations: { ...rule.annotations } };
}

/** A counter growing by `perMinute` every minute for `minutes` minutes, in promtool's series notation. */
const counter = (perMinute: number, minutes: number) => `0+${perMinute}x${minutes}`;

interface Series {
  readonly series: string;
  readonly values: string;
}

interface AlertCheck {
  readonly eval_time: string;
  readonly alertname: string;
  readonly exp_alerts: readonly unknown[];
}

interface PromqlCheck {
  readonly expr: string;
  readonly eval_time: string;
  readonly exp_samples: readonly { labels: string; value: number }[];
}

function runRuleTest(name: string, series: readonly Series[], alerts: readonly AlertCheck[], promql: readonly PromqlCheck[] = []) {
  const file = `${name}.test.yml`;
  const test = {
    rule_files: ['rules.yml'],
    evaluation_interval: '1m',
    tests: [{ name, interval: '1m', input_series: series, alert_rule_test: alerts, promql_expr_test: promql }],
  };
  writeFileSync(path.join(dir, file), stringify(test, { lineWidth: 0 }));
  return runPromtool(['test', 'rules', file], dir);
}

const http = (status: number, perMinute: number, minutes: number): Series => ({
  series: `http_requests_total{method="GET",route="/v1/jobs",status_code="${status}"}`,
  values: counter(perMinute, minutes),
});
const jobs = (status: string, perMinute: number, minutes: number): Series => ({
  series: `evalops_jobs_finished_total{type="evaluation",status="${status}"}`,
  values: counter(perMinute, minutes),
});

describe('generated rules under promtool', () => {
  it('pass `promtool check rules`', () => {
    const result = runPromtool(['check', 'rules', 'rules.yml'], dir);
    expect(result.output).toContain('SUCCESS');
    expect(result.status, result.output).toBe(0);
  });

  it('pass `promtool check rules` for an slo.yaml that leaves cancelled out and overrides a query', () => {
    const custom = parseSloConfig(
      [
        'version: 1',
        'slos:',
        '  - { name: jobs, description: d, objective: 99.5, window: 4w, runbook: B, sli: { kind: job_success, bad_statuses: [failed] } }',
        '  - name: api',
        '    description: d',
        '    objective: 99.95',
        '    window: 30d',
        '    runbook: A',
        '    sli:',
        '      kind: api_availability',
        '      error_query: sum(rate(http_requests_total{status_code=~"5..|429"}[{{window}}]))',
        '      total_query: sum(rate(http_requests_total[{{window}}]))',
      ].join('\n'),
      'custom.yaml',
    );
    writeFileSync(path.join(dir, 'custom.yml'), renderSloRulesYaml(custom));
    const result = runPromtool(['check', 'rules', 'custom.yml'], dir);
    expect(result.status, result.output).toBe(0);
  });

  it('API availability: 10% errors page at 3m (true from 1m, `for: 2m`) and ticket at 16m (`for: 15m`)', () => {
    // 100 requests a minute, 10 of them 5xx: error ratio 0.1, 100 times the 0.001 budget, far over
    // 14.4x and 6x. Rates need two samples, so every window burns from minute 1; events per window
    // are already ≥ 10 there (the 5m window holds 100 at minute 1).
    const result = runRuleTest(
      'api-fast-burn',
      [http(200, 90, 240), http(500, 10, 240)],
      [
        { eval_time: '1m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] },
        { eval_time: '2m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] },
        { eval_time: '3m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [expectedAlert('ApiAvailabilityPageBurn', 'api-availability')] },
        { eval_time: '2h', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [expectedAlert('ApiAvailabilityPageBurn', 'api-availability')] },
        { eval_time: '15m', alertname: 'ApiAvailabilityTicketBurn', exp_alerts: [] },
        { eval_time: '16m', alertname: 'ApiAvailabilityTicketBurn', exp_alerts: [expectedAlert('ApiAvailabilityTicketBurn', 'api-availability')] },
      ],
      [
        // 0.1 × 1000 = 100 and 100 requests in the 5m window at minute 1; rounded because rate() is float.
        { expr: 'round(slo:sli_error:ratio_rate1h * 1000)', eval_time: '30m', exp_samples: [{ labels: '{slo="api-availability", service="evalops"}', value: 100 }] },
        { expr: 'round(slo:sli_events:increase5m)', eval_time: '1m', exp_samples: [{ labels: '{slo="api-availability", service="evalops"}', value: 100 }] },
      ],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('API availability: 0.8% errors page through the 6h/30m pair alone', () => {
    // 992 good + 8 bad a minute: ratio 0.008, burn rate 8: under 14.4 (no 1h/5m page) but over 6.
    const result = runRuleTest(
      'api-slow-burn',
      [http(200, 992, 120), http(500, 8, 120)],
      [
        { eval_time: '2m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] },
        { eval_time: '3m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [expectedAlert('ApiAvailabilityPageBurn', 'api-availability')] },
      ],
      [
        // The fast pair alone does not hold: 0.008 < 14.4 × 0.001.
        { expr: 'slo:sli_error:ratio_rate1h > (14.4 * 0.001)', eval_time: '30m', exp_samples: [] },
        { expr: 'round(slo:current_burn_rate:ratio)', eval_time: '30m', exp_samples: [{ labels: '{slo="api-availability", service="evalops"}', value: 8 }] },
      ],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('API availability: 0.05% errors fire nothing and leave half the budget', () => {
    // 1999 good + 1 bad a minute: ratio 0.0005, burn rate 0.5, under every threshold including the
    // ticket's 1x; the full-window budget left is 1 - 0.5 = 0.5.
    const result = runRuleTest(
      'api-no-burn',
      [http(200, 1999, 360), http(500, 1, 360)],
      ['5m', '1h', '6h'].flatMap((t) => [
        { eval_time: t, alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] },
        { eval_time: t, alertname: 'ApiAvailabilityTicketBurn', exp_alerts: [] },
      ]),
      [{ expr: 'round(slo:period_error_budget_remaining:ratio * 100)', eval_time: '6h', exp_samples: [{ labels: '{slo="api-availability", service="evalops"}', value: 50 }] }],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('API availability: one failing request every 10 minutes never pages (too few events), but tickets at 115m (6h holds 10 events from 100m, `for: 15m`)', () => {
    // Every request fails, but the 5m window holds at most 1 and the 1h window 6: below 10 events,
    // so neither page pair may fire. The 6h window (and the 3d one) reaches 10 events at minute 100,
    // so the ticket condition holds from then and fires after its 15 minutes, at minute 115.
    const values = Array.from({ length: 241 }, (_, minute) => Math.floor(minute / 10)).join(' ');
    const result = runRuleTest(
      'api-low-traffic',
      [{ series: 'http_requests_total{method="POST",route="/v1/evals",status_code="503"}', values }],
      [
        ...['30m', '1h', '3h', '4h'].map((t) => ({ eval_time: t, alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] })),
        { eval_time: '114m', alertname: 'ApiAvailabilityTicketBurn', exp_alerts: [] },
        { eval_time: '115m', alertname: 'ApiAvailabilityTicketBurn', exp_alerts: [expectedAlert('ApiAvailabilityTicketBurn', 'api-availability')] },
      ],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('job success: 20% failed jobs page at 3m', () => {
    // 8 succeeded + 2 failed a minute: ratio 0.2 > 14.4 × 0.01 = 0.144; 10 events in the 5m window at minute 1.
    const result = runRuleTest(
      'jobs-fast-burn',
      [jobs('succeeded', 8, 120), jobs('failed', 2, 120)],
      [
        { eval_time: '2m', alertname: 'JobSuccessPageBurn', exp_alerts: [] },
        { eval_time: '3m', alertname: 'JobSuccessPageBurn', exp_alerts: [expectedAlert('JobSuccessPageBurn', 'job-success')] },
        { eval_time: '1h', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [] },
      ],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('job success: cancelled jobs count as bad and page too', () => {
    const result = runRuleTest(
      'jobs-cancelled-burn',
      [jobs('succeeded', 8, 120), jobs('cancelled', 2, 120)],
      [{ eval_time: '3m', alertname: 'JobSuccessPageBurn', exp_alerts: [expectedAlert('JobSuccessPageBurn', 'job-success')] }],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('job success: 0.5% failed jobs fire nothing', () => {
    // 199 succeeded + 1 failed a minute: ratio 0.005, burn rate 0.5 against the 1% budget.
    const result = runRuleTest(
      'jobs-no-burn',
      [jobs('succeeded', 199, 360), jobs('failed', 1, 360)],
      ['5m', '1h', '6h'].flatMap((t) => [
        { eval_time: t, alertname: 'JobSuccessPageBurn', exp_alerts: [] },
        { eval_time: t, alertname: 'JobSuccessTicketBurn', exp_alerts: [] },
      ]),
    );
    expect(result.status, result.output).toBe(0);
  });

  it('evaluation runs: 50% failed runs page at 3m', () => {
    const result = runRuleTest(
      'evals-fast-burn',
      [
        { series: 'evalops_evaluation_runs_finished_total{status="succeeded"}', values: counter(5, 60) },
        { series: 'evalops_evaluation_runs_finished_total{status="failed"}', values: counter(5, 60) },
      ],
      [
        { eval_time: '2m', alertname: 'EvaluationRunSuccessPageBurn', exp_alerts: [] },
        { eval_time: '3m', alertname: 'EvaluationRunSuccessPageBurn', exp_alerts: [expectedAlert('EvaluationRunSuccessPageBurn', 'evaluation-run-success')] },
      ],
    );
    expect(result.status, result.output).toBe(0);
  });

  it('a wrong expectation makes promtool fail (the harness can see a failure)', () => {
    const result = runRuleTest('harness-check', [http(200, 100, 30)], [
      { eval_time: '10m', alertname: 'ApiAvailabilityPageBurn', exp_alerts: [expectedAlert('ApiAvailabilityPageBurn', 'api-availability')] },
    ]);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('FAILED');
  });
});
