import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import { SloConfigError, defaultSloConfig, durationSeconds, loadSloConfig, parseSloConfig } from '../../../src/obs/slo-config.ts';

const repoSloYaml = new URL('../../../slo.yaml', import.meta.url);
const tmp = mkdtempSync(path.join(tmpdir(), 'evalops-slo-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The message of what `fn` throws, asserting it is an SloConfigError with code VALIDATION. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SloConfigError);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VALIDATION');
    return (err as Error).message;
  }
  throw new Error('expected a failure');
}

const one = (slo: string) => `version: 1\nslos:\n${slo}`;

describe('built-in SLOs', () => {
  const config = defaultSloConfig();

  it('define the three SLOs of the runbook sections A, B and C', () => {
    expect(config.service).toBe('evalops');
    expect(config.source).toBe('built-in defaults');
    expect(
      config.slos.map((s) => [s.name, s.sli.kind, s.objectivePercent, s.objective, s.errorBudget, s.window, s.windowSeconds, s.runbookSection, s.minEvents]),
    ).toEqual([
      ['api-availability', 'api_availability', 99.9, 0.999, 0.001, '28d', 28 * 86_400, 'A', 10],
      ['job-success', 'job_success', 99, 0.99, 0.01, '28d', 28 * 86_400, 'B', 10],
      ['evaluation-run-success', 'evaluation_success', 99, 0.99, 0.01, '28d', 28 * 86_400, 'C', 10],
    ]);
    expect(config.slos.map((s) => s.runbookUrl)).toEqual([
      'docs/runbook.md#a-api-availability-drop',
      'docs/runbook.md#b-job-success-rate-drop',
      'docs/runbook.md#c-evaluation-run-failures',
    ]);
  });

  it('query the service metric names, with cancelled counted as bad for jobs and evaluation runs', () => {
    const [api, jobs, evals] = config.slos;
    expect(api!.sli.errorQuery).toBe('sum(rate(http_requests_total{status_code=~"5.."}[{{window}}]))');
    expect(api!.sli.totalQuery).toBe('sum(rate(http_requests_total[{{window}}]))');
    expect(jobs!.sli.badStatuses).toEqual(['failed', 'cancelled']);
    expect(jobs!.sli.errorQuery).toBe('sum(rate(evalops_jobs_finished_total{status=~"failed|cancelled"}[{{window}}]))');
    expect(jobs!.sli.totalQuery).toBe('sum(rate(evalops_jobs_finished_total{status=~"succeeded|failed|cancelled"}[{{window}}]))');
    expect(evals!.sli.errorQuery).toBe('sum(rate(evalops_evaluation_runs_finished_total{status=~"failed|cancelled"}[{{window}}]))');
  });

  it('are frozen', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.slos[0])).toBe(true);
  });

  it('are what the repository slo.yaml says, so the file and the defaults cannot drift apart', () => {
    const fromFile = parseSloConfig(readFileSync(repoSloYaml, 'utf8'), 'slo.yaml');
    expect(fromFile.slos).toEqual(config.slos);
    expect(fromFile.service).toBe(config.service);
  });
});

describe('loadSloConfig', () => {
  it('returns the built-in SLOs when no path is given', async () => {
    expect((await loadSloConfig(undefined)).slos).toEqual(defaultSloConfig().slos);
  });

  it('reads a file and resolves its values', async () => {
    const file = path.join(tmp, 'custom.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'service: shop',
        'runbook_url: https://wiki.example/runbook',
        'min_events: 50',
        'slos:',
        '  - name: jobs',
        '    description: Jobs that ended well.',
        '    objective: 99.5',
        '    window: 4w',
        '    runbook: B',
        '    min_events: 20',
        '    sli: { kind: job_success, bad_statuses: [failed] }',
        '  - name: api',
        '    description: Requests not answered 5xx or 429.',
        '    objective: 99.95',
        '    window: 30d',
        '    runbook: A',
        '    sli:',
        '      kind: api_availability',
        '      error_query: sum(rate(http_requests_total{status_code=~"5..|429"}[{{window}}]))',
      ].join('\n'),
    );
    const config = await loadSloConfig(file);
    expect(config.source).toBe(file);
    expect(config.service).toBe('shop');
    const [jobs, api] = config.slos;
    // Cancelled left out: neither bad nor part of the total.
    expect(jobs!.sli.errorQuery).toBe('sum(rate(evalops_jobs_finished_total{status=~"failed"}[{{window}}]))');
    expect(jobs!.sli.totalQuery).toBe('sum(rate(evalops_jobs_finished_total{status=~"succeeded|failed"}[{{window}}]))');
    expect(jobs!).toMatchObject({ objective: 0.995, errorBudget: 0.005, windowSeconds: 28 * 86_400, minEvents: 20, runbookUrl: 'https://wiki.example/runbook#b-job-success-rate-drop' });
    // 100 - 99.95 = 0.04999999999999716 in floating point; the budget is kept at 0.0005.
    expect(api!.errorBudget).toBe(0.0005);
    expect(api!.objective).toBe(0.9995);
    expect(api!.minEvents).toBe(50);
    expect(api!.sli.errorQuery).toContain('5..|429');
    expect(api!.sli.totalQuery).toBe('sum(rate(http_requests_total[{{window}}]))');
  });

  it('names the file when it is missing', async () => {
    const missing = path.join(tmp, 'nope.yaml');
    await expect(loadSloConfig(missing)).rejects.toThrow(`${missing}: cannot read the SLO definitions (file not found)`);
  });
});

describe('parseSloConfig errors name the file and the field', () => {
  it('an objective of 100', () => {
    const message = failure(() => parseSloConfig(one('  - { name: a, description: d, objective: 100, window: 28d, runbook: A, sli: { kind: api_availability } }'), 'slo.yaml'));
    expect(message).toBe('slo.yaml: slos[0].objective: must be a percentage above 0 and below 100, such as 99.9');
  });

  it('a window that is not a duration', () => {
    const message = failure(() => parseSloConfig(one('  - { name: a, description: d, objective: 99, window: 28 days, runbook: A, sli: { kind: api_availability } }'), 'my-slo.yaml'));
    expect(message).toMatch(/^my-slo\.yaml: slos\[0\]\.window: must be a duration such as 28d/);
  });

  it('an unknown SLI kind', () => {
    const message = failure(() => parseSloConfig(one('  - { name: a, description: d, objective: 99, window: 28d, runbook: A, sli: { kind: latency } }'), 'slo.yaml'));
    expect(message).toContain('slos[0].sli.kind');
    expect(message).toContain('api_availability, job_success, evaluation_success');
  });

  it('a misspelt field', () => {
    const message = failure(() => parseSloConfig(one('  - { name: a, description: d, objectve: 99, window: 28d, runbook: A, sli: { kind: api_availability } }'), 'slo.yaml'));
    expect(message).toContain('slos[0].objective');
    expect(message).toMatch(/objectve/);
  });

  it('a bad runbook section and a status that is not a failure, both reported', () => {
    const message = failure(() =>
      parseSloConfig(one('  - { name: a, description: d, objective: 99, window: 28d, runbook: D, sli: { kind: job_success, bad_statuses: [succeeded] } }'), 'slo.yaml'),
    );
    expect(message).toContain('slos[0].runbook: accepts A, B or C');
    expect(message).toContain('slos[0].sli.bad_statuses[0]: accepts failed or cancelled');
  });

  it('a repeated name', () => {
    const slo = '  - { name: a, description: d, objective: 99, window: 28d, runbook: A, sli: { kind: api_availability } }';
    expect(failure(() => parseSloConfig(one(`${slo}\n${slo}`), 'slo.yaml'))).toBe('slo.yaml: slos[1].name: repeats the SLO name "a"');
  });

  it('a query without the window placeholder', () => {
    const message = failure(() =>
      parseSloConfig(one('  - { name: a, description: d, objective: 99, window: 28d, runbook: A, sli: { kind: api_availability, total_query: "sum(rate(x[5m]))" } }'), 'slo.yaml'),
    );
    expect(message).toBe('slo.yaml: slos[0].sli.total_query: must contain {{window}} where the rate range goes');
  });

  it('a wrong version and no SLOs', () => {
    expect(failure(() => parseSloConfig('version: 2\nslos: []\n', 'slo.yaml'))).toBe('slo.yaml: version: must be 1; slos: must define at least one SLO');
  });

  it('an empty file and a list instead of a mapping', () => {
    expect(failure(() => parseSloConfig('', 'slo.yaml'))).toBe('slo.yaml: the file is empty; it needs `version: 1` and a list of `slos`');
    expect(failure(() => parseSloConfig('- a\n- b\n', 'slo.yaml'))).toBe('slo.yaml: must be a mapping with `version: 1` and a list of `slos`');
  });

  it('text that is not YAML', () => {
    expect(failure(() => parseSloConfig('slos: [unclosed', 'broken.yaml'))).toMatch(/^broken\.yaml: not valid YAML/);
  });
});

describe('durationSeconds', () => {
  it('reads Prometheus-style durations and rejects others', () => {
    expect(durationSeconds('5m')).toBe(300);
    expect(durationSeconds('6h')).toBe(21_600);
    expect(durationSeconds('3d')).toBe(259_200);
    expect(durationSeconds('4w')).toBe(2_419_200);
    for (const bad of ['', '28', '1.5h', '0d', '5s', ' 5m', '28 days']) expect(durationSeconds(bad)).toBeUndefined();
  });
});
