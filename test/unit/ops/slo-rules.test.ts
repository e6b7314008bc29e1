import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultSloConfig, parseSloConfig } from '../../../src/obs/slo-config.ts';
import { alertName, generateSloRules, renderSloRulesYaml, type AlertingRule, type RecordingRule } from '../../../src/ops/slo-rules.ts';

const config = defaultSloConfig();
const groups = generateSloRules(config).groups;
const recordings = (i: number) => groups[i]!.rules.filter((r): r is RecordingRule => 'record' in r);
const alerts = (i: number) => groups[i]!.rules.filter((r): r is AlertingRule => 'alert' in r);

describe('generateSloRules', () => {
  it('makes one group per SLO', () => {
    expect(groups.map((g) => g.name)).toEqual(['evalops-slo-api-availability', 'evalops-slo-job-success', 'evalops-slo-evaluation-run-success']);
  });

  it('records the error ratio of every alert window and of the full window, in Sloth names', () => {
    const names = recordings(0).map((r) => r.record);
    for (const w of ['5m', '30m', '1h', '6h', '3d', '28d']) expect(names).toContain(`slo:sli_error:ratio_rate${w}`);
    for (const w of ['5m', '30m', '1h', '6h', '3d']) expect(names).toContain(`slo:sli_events:increase${w}`);
    for (const meta of ['slo:objective:ratio', 'slo:error_budget:ratio', 'slo:time_period:days', 'slo:current_burn_rate:ratio', 'slo:period_burn_rate:ratio', 'slo:period_error_budget_remaining:ratio']) {
      expect(names).toContain(meta);
    }
    expect(new Set(names).size).toBe(names.length);
    for (const r of recordings(0)) expect(r.labels).toEqual({ slo: 'api-availability', service: 'evalops' });
  });

  it('writes the queries of slo.yaml with the window filled in', () => {
    const rule = recordings(1).find((r) => r.record === 'slo:sli_error:ratio_rate6h')!;
    expect(rule.expr).toBe(
      '(sum(rate(evalops_jobs_finished_total{status=~"failed|cancelled"}[6h])) or vector(0))\n/\n(sum(rate(evalops_jobs_finished_total{status=~"succeeded|failed|cancelled"}[6h])))',
    );
    expect(recordings(1).find((r) => r.record === 'slo:sli_events:increase6h')!.expr).toBe(
      '(sum(rate(evalops_jobs_finished_total{status=~"succeeded|failed|cancelled"}[6h]))) * 21600',
    );
    expect(recordings(0).find((r) => r.record === 'slo:objective:ratio')!.expr).toBe('vector(0.999)');
    expect(recordings(0).find((r) => r.record === 'slo:error_budget:ratio')!.expr).toBe('vector(0.001)');
    expect(recordings(0).find((r) => r.record === 'slo:time_period:days')!.expr).toBe('vector(28)');
  });

  it('alerts <SLO>PageBurn and <SLO>TicketBurn with the multiwindow thresholds, `for`, and runbook links', () => {
    const [page, ticket] = alerts(0);
    expect(page!.alert).toBe('ApiAvailabilityPageBurn');
    expect(page!.for).toBe('2m');
    expect(page!.labels).toEqual({ severity: 'page', runbook_section: 'A' });
    expect(page!.expr).toContain('slo:sli_error:ratio_rate1h{slo="api-availability", service="evalops"} > (14.4 * 0.001)');
    expect(page!.expr).toContain('and slo:sli_error:ratio_rate5m{slo="api-availability", service="evalops"} > (14.4 * 0.001)');
    expect(page!.expr).toContain('slo:sli_error:ratio_rate6h{slo="api-availability", service="evalops"} > (6 * 0.001)');
    expect(page!.expr).toContain('and slo:sli_error:ratio_rate30m{slo="api-availability", service="evalops"} > (6 * 0.001)');
    expect(page!.expr).toContain('and slo:sli_events:increase5m{slo="api-availability", service="evalops"} >= 10');
    expect(page!.expr.split('\nor\n')).toHaveLength(2);
    expect(page!.annotations.runbook_url).toBe('docs/runbook.md#a-api-availability-drop');
    expect(page!.annotations.slo_doc).toBe('docs/slo.md#api-availability');
    expect(ticket!.alert).toBe('ApiAvailabilityTicketBurn');
    expect(ticket!.for).toBe('15m');
    expect(ticket!.labels).toEqual({ severity: 'ticket', runbook_section: 'A' });
    expect(ticket!.expr).toContain('slo:sli_error:ratio_rate3d{slo="api-availability", service="evalops"} > (1 * 0.001)');
    expect(ticket!.expr).toContain('and slo:sli_error:ratio_rate6h{slo="api-availability", service="evalops"} > (1 * 0.001)');
    expect(alerts(1).map((a) => [a.alert, a.labels.runbook_section])).toEqual([
      ['JobSuccessPageBurn', 'B'],
      ['JobSuccessTicketBurn', 'B'],
    ]);
    expect(alerts(1)[0]!.expr).toContain('> (14.4 * 0.01)');
    expect(alerts(2)[0]!.annotations.runbook_url).toBe('docs/runbook.md#c-evaluation-run-failures');
  });

  it('carries the SLO window and min_events of the configuration', () => {
    const custom = parseSloConfig(
      'version: 1\nmin_events: 25\nslos:\n  - { name: jobs, description: d, objective: 99.5, window: 30d, runbook: B, sli: { kind: job_success } }\n',
      'custom.yaml',
    );
    const rules = generateSloRules(custom).groups[0]!.rules;
    expect(rules.map((r) => ('record' in r ? r.record : r.alert))).toContain('slo:sli_error:ratio_rate30d');
    const page = rules.find((r): r is AlertingRule => 'alert' in r && r.alert === 'JobsPageBurn')!;
    expect(page.expr).toContain('>= 25');
    expect(page.expr).toContain('> (14.4 * 0.005)');
  });
});

describe('renderSloRulesYaml', () => {
  it('is YAML with a do-not-edit header naming the source, and no anchors', () => {
    const text = renderSloRulesYaml(config);
    expect(text.startsWith('# Generated by `evalops slo rules` from built-in defaults.')).toBe(true);
    expect(text).not.toMatch(/[&*]a\d/);
    expect(parse(text)).toEqual(JSON.parse(JSON.stringify(generateSloRules(config))));
  });
});

describe('alertName', () => {
  it('turns the SLO name into CamelCase with the severity', () => {
    expect(alertName('api-availability', 'page')).toBe('ApiAvailabilityPageBurn');
    expect(alertName('evaluation-run-success', 'ticket')).toBe('EvaluationRunSuccessTicketBurn');
  });
});
