import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.ts';
import { defaultSloConfig } from '../../../src/obs/slo-config.ts';
import { backgroundTasksCheck, databaseCheck, endpointsCheck, migrationsCheck, sloBurnCheck } from '../../../src/ops/doctor-api-checks.ts';
import type { DoctorContext } from '../../../src/ops/doctor-context.ts';
import { failureCause, metadataErrorsInMessage } from '../../../src/ops/doctor-eval-checks.ts';
import { failureVerdict, groupByError, nextStepForError, normaliseError, RUNBOOK_FAILED_SAMPLE_QUERY, RUNBOOK_STATUS_QUERY } from '../../../src/ops/doctor-job-checks.ts';
import * as seed from '../../helpers/runbook-fixtures.ts';
import type { HttpProbe } from '../../../src/ops/doctor-probes.ts';
import { formatDoctorReport } from '../../../src/ops/doctor-text.ts';

const probe = (route: string, status: number | null, body: unknown, error: string | null = null): HttpProbe => ({ route, status, body, error, ms: 2 });

const healthyDetailed = {
  status: 'healthy',
  version: '0.1.0',
  commit: null,
  components: {
    database: { status: 'healthy', latency_ms: 1, details: { location: 'postgresql://app:***@db/evalops', migrations: { current: '0004-access-control', head: '0004-access-control', pending: [], unknown: [] } } },
    redis: { status: 'disabled', latency_ms: null, details: {} },
    background_tasks: { status: 'healthy', latency_ms: 1, details: { runner_mode: 'inprocess', queued: 0, running: 0, oldest_queued_age_ms: null, failed_last_hour: 0 } },
  },
};

function context(overrides: Partial<DoctorContext> = {}): DoctorContext {
  return {
    url: 'http://127.0.0.1:8000',
    config: loadConfig({}),
    slo: defaultSloConfig(),
    timeoutMs: 1000,
    db: { read: async () => ({ columns: [], rows: [] }), migrationStatus: async () => { throw new Error('not used'); }, location: 'postgresql://app:***@db/evalops', via: 'direct' },
    dbError: null,
    migrations: { migrations: [], current: '0004-access-control', head: '0004-access-control', pending: [], unknown: [] },
    migrationsError: null,
    health: probe('/health', 200, { status: 'ok' }),
    detailed: probe('/health/detailed', 200, healthyDetailed),
    metrics: probe('/metrics', 200, '# HELP http_requests_total ...\nhttp_requests_total 3\n'),
    sloStatus: null,
    sloError: null,
    runnerMode: 'inprocess',
    apiKey: undefined,
    replay: { enabled: false, timeoutMs: 1000 },
    ...overrides,
  };
}

describe('the failure rule of sections B and C', () => {
  it('judges the share against the error budget once enough jobs ended', () => {
    expect(failureVerdict(100, 1, 0.01, 10, 'jobs')).toEqual({ action: false, reason: '1 of 100 ended jobs failed or were cancelled (1.00%), within the 1.00% error budget' });
    expect(failureVerdict(100, 2, 0.01, 10, 'jobs')).toEqual({ action: true, reason: '2 of 100 ended jobs failed or were cancelled (2.00%), above the 1.00% error budget: burn 2.0x' });
  });

  it('shows every failure when too few ended to judge a ratio', () => {
    expect(failureVerdict(3, 1, 0.01, 10, 'jobs').action).toBe(true);
    expect(failureVerdict(3, 1, 0.01, 10, 'jobs').reason).toMatch(/too few \(fewer than 10\) to judge a ratio/);
    expect(failureVerdict(3, 0, 0.01, 10, 'jobs').action).toBe(false);
    expect(failureVerdict(0, 0, 0.01, 10, 'jobs').action).toBe(false);
  });
});

describe("the runbook's section-B SQL", () => {
  it('is what the seed says, verbatim (runbook-psql.pg.test.ts runs the same text through psql)', () => {
    expect(RUNBOOK_STATUS_QUERY).toBe(seed.RUNBOOK_STATUS_QUERY);
    expect(RUNBOOK_FAILED_SAMPLE_QUERY).toBe(seed.RUNBOOK_FAILED_SAMPLE_QUERY);
  });
});

describe('grouping failed jobs by error', () => {
  it('treats attempts and ids as the same failure, largest group first', () => {
    expect(normaliseError('attempt 3 of 3: upstream 502')).toBe('upstream 502');
    expect(normaliseError('lost: runner 0a1b2c3d-0000-4000-8000-000000000001 stopped renewing its lease')).toBe('lost: runner <id> stopped renewing its lease');
    expect(normaliseError(null)).toBe('(no error message)');
    const groups = groupByError([
      { job_id: 'j1', type: 'sleep', status: 'failed', error_message: 'attempt 3 of 3: upstream 502', created_at: '2025-01-10T09:00:00.000Z' },
      { job_id: 'j2', type: 'noop', status: 'failed', error_message: 'attempt 1 of 1: upstream 502', created_at: '2025-01-10T09:05:00.000Z' },
      { job_id: 'j3', type: 'sleep', status: 'cancelled', error_message: 'cancelled: cancel requested', created_at: '2025-01-10T09:01:00.000Z' },
    ]);
    expect(groups).toEqual([
      { message: 'upstream 502', count: 2, statuses: ['failed'], types: ['noop', 'sleep'], latest: '2025-01-10T09:05:00.000Z', example_job_id: 'j1' },
      { message: 'cancelled: cancel requested', count: 1, statuses: ['cancelled'], types: ['sleep'], latest: '2025-01-10T09:01:00.000Z', example_job_id: 'j3' },
    ]);
    expect(nextStepForError('lost: runner <id> stopped renewing its lease')).toMatch(/workers ping/);
    expect(nextStepForError('timed out after 300 ms')).toMatch(/timeout/);
  });
});

describe('evaluation failure causes', () => {
  it('reads the cause and the metadata errors from the run error', () => {
    const message =
      'run_metadata.json failed validation (invalid commit_sha: must be a lowercase hex commit id (7-64 digits) or "unknown"; missing required key: seed); the run\'s files are kept in /data/runs/x for inspection (evalops eval validate /data/runs/x)';
    expect(failureCause('failed', message)).toBe('run_metadata');
    expect(metadataErrorsInMessage(message)).toEqual(['invalid commit_sha: must be a lowercase hex commit id (7-64 digits) or "unknown"', 'missing required key: seed']);
    expect(failureCause('failed', 'publishing to MLflow failed: MLflow at http://m refused the request: 403 PERMISSION_DENIED')).toBe('mlflow');
    expect(failureCause('cancelled', 'cancelled: cancel requested')).toBe('cancelled');
    expect(failureCause('failed', 'prompt version qa@9 does not exist')).toBe('inputs');
    expect(metadataErrorsInMessage('something else')).toEqual([]);
  });
});

describe('common and section-A checks', () => {
  it('reports nothing on a healthy deployment', () => {
    const ctx = context();
    for (const result of [endpointsCheck(ctx), databaseCheck(ctx), backgroundTasksCheck(ctx), migrationsCheck(ctx)]) expect(result.status, `${result.id}: ${result.summary}`).toBe('ok');
  });

  it('names a dead API with the next step', () => {
    const ctx = context({ health: probe('/health', null, null, 'connect ECONNREFUSED 127.0.0.1:8000'), detailed: probe('/health/detailed', null, null, 'connect ECONNREFUSED 127.0.0.1:8000'), metrics: probe('/metrics', null, null, 'connect ECONNREFUSED') });
    const r = endpointsCheck(ctx);
    expect(r).toMatchObject({ id: 'common.endpoints', section: 'common', status: 'action', runbook: 'docs/runbook.md#common-first-checks' });
    expect(r.summary).toMatch(/does not answer \(connect ECONNREFUSED/);
    expect(r.next_step).toMatch(/process manager/);
  });

  it('names an unhealthy database from both sides', () => {
    const detailed = structuredClone(healthyDetailed);
    Object.assign(detailed.components.database, { status: 'unhealthy', message: 'cannot reach the database: connect ECONNREFUSED 127.0.0.1:5433' });
    const r = databaseCheck(context({ detailed: probe('/health/detailed', 503, detailed), db: null, dbError: 'cannot connect to the database: connect ECONNREFUSED 127.0.0.1:1' }));
    expect(r).toMatchObject({ id: 'A.database', section: 'A', status: 'action', runbook: 'docs/runbook.md#a-api-availability-drop' });
    expect(r.evidence).toEqual([
      '/health/detailed database: unhealthy: cannot reach the database: connect ECONNREFUSED 127.0.0.1:5433',
      'the doctor cannot reach the database: cannot connect to the database: connect ECONNREFUSED 127.0.0.1:1',
    ]);
    expect(r.next_step).toMatch(/evalops migrate current/);
  });

  it('tells pending migrations from a database ahead of this version', () => {
    const pending = migrationsCheck(context({ migrations: { migrations: [], current: '0002-evaluations', head: '0004-access-control', pending: ['0003-slo-and-incidents', '0004-access-control'], unknown: [] } }));
    expect(pending).toMatchObject({ status: 'action', summary: '2 migration(s) pending' });
    expect(pending.next_step).toMatch(/evalops migrate up/);
    const ahead = migrationsCheck(context({ migrations: { migrations: [], current: '0009-future', head: '0004-access-control', pending: [], unknown: ['0009-future'] } }));
    expect(ahead.status).toBe('action');
    expect(ahead.next_step).toMatch(/rolled-back binary/);
  });

  it('marks a stopped runner as a finding of A.1 that points to section B', () => {
    const detailed = structuredClone(healthyDetailed);
    Object.assign(detailed.components.background_tasks, { status: 'unhealthy', message: 'the job runner is stopped' });
    const r = backgroundTasksCheck(context({ detailed: probe('/health/detailed', 503, detailed) }));
    expect(r).toMatchObject({ status: 'action', summary: 'background_tasks unhealthy: the job runner is stopped' });
    expect(r.next_step).toMatch(/section B/);
  });

  it('says why the SLO checks could not run', () => {
    expect(sloBurnCheck(context({ db: null, dbError: 'connect ECONNREFUSED' }), 'B')).toMatchObject({ id: 'B.slo_burn', status: 'skipped', summary: 'cannot measure the SLOs: connect ECONNREFUSED' });
  });

  it('prints a finding with its evidence, next step and runbook section', () => {
    const ctx = context({ db: null, dbError: 'connect ECONNREFUSED 127.0.0.1:1' });
    const finding = databaseCheck(ctx);
    const text = formatDoctorReport({ url: ctx.url, checked_at: '2025-01-10T09:00:00.000Z', duration_ms: 1200, configuration: { JOB_RUNNER_MODE: 'inprocess' }, checks: [endpointsCheck(ctx), finding], findings: [finding], action_needed: true });
    expect(text).toContain('  ACTION A.1-A.2  Database: /health/detailed and a connection from here: cannot reach the database: connect ECONNREFUSED 127.0.0.1:1');
    expect(text).toContain('           | the doctor cannot reach the database: connect ECONNREFUSED 127.0.0.1:1');
    expect(text).toContain('           runbook: docs/runbook.md#a-api-availability-drop  (A.database)');
    expect(text).toContain('1 finding(s) need action:\n  - [section A] A.database:');
  });
});
