import { rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import { DOCTOR_CHECK_IDS } from '../../src/ops/doctor-types.ts';
import { casesJsonl, request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { type FakeMlflowServer, startFakeMlflowServer } from '../helpers/fake-mlflow-server.ts';
import { runCli, waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * `evalops doctor` against an in-process deployment (the embedded default on PGlite, where the
 * doctor reads through the server that holds the database; PostgreSQL directly): nothing on a
 * healthy system, then each runbook scenario injected in turn and named with its section and
 * evidence. Queue mode, a dead Redis and a dead database are in doctor-runbook.pg.test.ts.
 */

let db: TestDatabase;
let mlflow: FakeMlflowServer;
let server: TestServer | undefined;
let healthyRunDir: string;

/** A job type that always times out: the runbook's "job success rate drop". */
const slow: JobHandler<Record<string, unknown>, never> = {
  type: 'slow',
  description: 'waits longer than its timeout',
  payloadSchema: z.record(z.string(), z.unknown()),
  timeoutMs: 50,
  async run(_payload, ctx) {
    await sleep(60_000, undefined, { signal: ctx.signal });
    throw new Error('unreachable');
  },
};

const failingRoute: FastifyPluginAsync = async (app) => {
  app.get('/v1/test/fail', async () => {
    throw new Error('injected failure');
  });
};

// Load shedding off: a shed 503 on a busy machine would be a real 5xx finding the test did not inject.
const deploymentEnv = () => ({ MLFLOW_TRACKING_URI: mlflow.url, MLFLOW_EXPERIMENT_NAME: 'doctor-it', SLI_FLUSH_MS: '100', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' });

async function start(extra: Record<string, string> = {}): Promise<TestServer> {
  await server?.close(2000);
  server = await startTestServer(db, { ...deploymentEnv(), COMMIT_SHA: '0123abcd0123abcd', ...extra }, { handlers: [slow], routes: failingRoute });
  return server;
}

interface Report {
  findings: Array<{ id: string; section: string; summary: string; evidence: string[]; next_step: string | null; runbook: string }>;
  checks: Array<{ id: string; status: string; summary: string; evidence: string[] }>;
  action_needed: boolean;
}

async function doctor(): Promise<{ code: number; report: Report }> {
  const res = await runCli(['doctor', '--json', '--url', server!.url], { ...db.env, ...deploymentEnv() });
  expect(res.stderr).toBe('');
  return { code: res.code, report: JSON.parse(res.stdout) as Report };
}

const finding = (r: Report, id: string) => r.findings.find((f) => f.id === id);

async function evaluate(seed: number): Promise<any> {
  const url = server!.url;
  const snapshot = (await uploadDataset(url, casesJsonl(4, 'doc'))).body.data_snapshot_id;
  const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'doc@1', data_snapshot_id: snapshot, provider: 'echo', seed });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForRun(url, res.body.run_id);
}

beforeAll(async () => {
  db = await createTestDatabase();
  mlflow = await startFakeMlflowServer();
  await start();
  await request(server!.url, 'POST', '/v1/prompts', { name: 'doc', messages: [{ role: 'user', content: 'echo: {{text}}' }] });
});

afterAll(async () => {
  await server?.close(2000);
  await mlflow?.close();
  await db?.cleanup();
});

describe('evalops doctor on an in-process deployment', () => {
  it('reports nothing on a healthy system and exits 0', async () => {
    const job = await server!.api('POST', '/v1/jobs', { type: 'noop' });
    await waitFor('the noop job', async () => (await server!.api('GET', `/v1/jobs/${job.body.job_id}`)).body.status === 'succeeded');
    const run = await evaluate(1);
    expect(run.status, run.error_message).toBe('succeeded');
    healthyRunDir = run.run_dir;

    const { code, report } = await doctor();
    expect(report.findings).toEqual([]);
    expect(report.action_needed).toBe(false);
    expect(code).toBe(0);
    expect(report.checks.map((c) => c.id)).toEqual([...DOCTOR_CHECK_IDS]);
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    expect(status).toMatchObject({ 'common.endpoints': 'ok', 'A.database': 'ok', 'A.migrations': 'ok', 'B.status_distribution': 'ok', 'B.workers': 'ok', 'C.result_files': 'ok', 'C.mlflow': 'ok', 'C.replay': 'skipped' });

    const text = await runCli(['doctor', '--url', server!.url], { ...db.env, ...deploymentEnv() });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('no finding: every runbook check passed');
  });

  it('C.3: MLflow refusing with 403 is named with the URI, the status and the next step', async () => {
    mlflow.failWith(403);
    try {
      const { code, report } = await doctor();
      expect(code).toBe(14);
      expect(report.findings.map((f) => f.id)).toEqual(['C.mlflow']);
      const f = finding(report, 'C.mlflow')!;
      expect(f.section).toBe('C');
      expect(f.runbook).toBe('docs/runbook.md#c-evaluation-run-failures');
      expect(f.summary).toBe(`MLflow at ${mlflow.url} refuses the credentials: 403 PERMISSION_DENIED`);
      expect(f.evidence[0]).toContain('experiments/get-by-name?experiment_name=doctor-it with no credentials → 403 PERMISSION_DENIED');
      expect(f.next_step).toContain('grant them EDIT on experiment "doctor-it"');
    } finally {
      mlflow.failWith(null);
    }
  });

  it('C.1/C.2: a run whose run_metadata fails validation, and result files gone from a run folder', async () => {
    // A tag where a commit id belongs.
    await start({ COMMIT_SHA: 'release-2024.06' });
    const run = await evaluate(2);
    expect(run.status).toBe('failed');
    rmSync(path.join(healthyRunDir, 'summary.json'));

    const { code, report } = await doctor();
    expect(code).toBe(14);
    const failed = finding(report, 'C.failed_runs')!;
    expect(failed.summary).toMatch(/^1 of 2 ended evaluation runs failed or were cancelled; too few .* causes: 1 × run_metadata$/);
    expect(failed.evidence).toContain('  run_metadata: invalid commit_sha: must be a lowercase hex commit id (7-64 digits) or "unknown"');
    expect(failed.evidence).toContain('  files: result files present');
    expect(failed.evidence[0]).toContain(`run ${run.run_id} (doc@1, live) failed`);
    expect(failed.next_step).toMatch(/^run_metadata: fix what produced the invalid keys \(COMMIT_SHA must be a commit id/);

    const files = finding(report, 'C.result_files')!;
    expect(files.evidence.join('\n')).toContain(`${healthyRunDir}): missing result file: summary.json`);
    // The evaluation's job failed too: section B shows it with the same message.
    expect(finding(report, 'B.failed_jobs')!.evidence.join('\n')).toContain('run_metadata.json failed validation (invalid commit_sha');
    // The evaluation SLO's Prometheus rules read this counter.
    const metrics = await server!.api('GET', '/metrics');
    expect(metrics.body).toContain('evalops_evaluation_runs_finished_total{status="failed"} 1');
    expect(metrics.body).toContain('evalops_evaluation_runs_finished_total{status="succeeded"} 1');
  });

  it('B: jobs that time out are named with the distribution and their error grouped', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await server!.api('POST', '/v1/jobs', { type: 'slow', max_attempts: 1 })).body.job_id);
    await waitFor('the slow jobs to fail', async () => {
      const { body } = await server!.api('GET', '/v1/jobs?type=slow&status=failed&limit=100');
      return body.jobs.length === 12;
    });
    const { code, report } = await doctor();
    expect(code).toBe(14);
    const dist = finding(report, 'B.status_distribution')!;
    expect(dist.section).toBe('B');
    expect(dist.runbook).toBe('docs/runbook.md#b-job-success-rate-drop');
    // 13 failed (12 slow, 1 evaluation) of 15 ended (a noop and an evaluation succeeded).
    expect(dist.summary).toBe('13 of 15 ended jobs failed or were cancelled (86.67%), above the 1.00% error budget: burn 86.7x');
    expect(dist.evidence[0]).toBe('jobs created in the last hour: queued 0, running 0, succeeded 2, failed 13, cancelled 0');
    const sample = finding(report, 'B.failed_jobs')!;
    expect(sample.evidence[0]).toMatch(/^12 × "timed out after 50 ms" \(failed; type slow; latest .*; e\.g\. job [0-9a-f-]{36}\)$/);
    expect(sample.next_step).toContain("the type's timeout was reached");
    expect(finding(report, 'B.slo_burn')!.summary).toBe('job-success: PAGE alert would fire now');
  });

  it('A: a 5xx spike over the last 5 minutes, with the route that fails', async () => {
    for (let i = 0; i < 30; i++) expect((await server!.api('GET', '/v1/test/fail')).status).toBe(500);
    await waitFor('the 5xx answers to reach request_counts', async () => {
      const row = await server!.database.db.selectFrom('request_counts').select((eb) => eb.fn.sum<number>('requests').as('n')).where('status_code', '=', 500).executeTakeFirst();
      return Number(row?.n ?? 0) >= 30;
    });
    const { code, report } = await doctor();
    expect(code).toBe(14);
    const spike = finding(report, 'A.error_ratio')!;
    expect(spike.section).toBe('A');
    expect(spike.runbook).toBe('docs/runbook.md#a-api-availability-drop');
    expect(spike.summary).toMatch(/^\d+\.\d\d% of \d+ requests answered 5xx in the last 5 minutes, above 1\.44%$/);
    expect(spike.evidence).toContain('  /v1/test: 30 × 500');
    expect(spike.next_step).toMatch(/limit traffic at the load balancer or roll back/);
    // The server's own view is still healthy: the doctor does not blame the database.
    expect(finding(report, 'A.database')).toBeUndefined();
  });
});
