import { existsSync, readFileSync, writeFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeMlflowServer, startFakeMlflowServer } from '../helpers/fake-mlflow-server.ts';
import { casesJsonl, request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { runCli } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Runbook section C: a run whose run_metadata fails validation, and MLflow publishing (what it
 * sends, and a refusal naming the URI and the status). One database, servers started in turn with
 * the configuration each part needs.
 */

let db: TestDatabase;
let mlflow: FakeMlflowServer;
let server: TestServer | undefined;
let snapshot: string;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'evalops-eval-folder-'));

beforeAll(async () => {
  db = await createTestDatabase();
  mlflow = await startFakeMlflowServer();
});

afterAll(async () => {
  await server?.close(2000);
  await mlflow?.close();
  await db?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function restart(env: Record<string, string>): Promise<string> {
  await server?.close(2000);
  server = await startTestServer(db, env);
  return server.url;
}

async function runOnce(url: string, extra: Record<string, unknown> = {}): Promise<any> {
  // echo answers with the user message, so every case passes `exact`.
  await request(url, 'POST', '/v1/prompts', { name: 'meta', messages: [{ role: 'user', content: 'echo: {{text}}' }] });
  snapshot ??= (await uploadDataset(url, casesJsonl(5, 'meta'))).body.data_snapshot_id;
  const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'meta@1', data_snapshot_id: snapshot, provider: 'echo', seed: 3, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForRun(url, res.body.run_id);
}

describe('run_metadata validation (runbook C.1, C.2)', () => {
  it('fails a run whose metadata is invalid, names the keys, and keeps its files for inspection', async () => {
    // A tag where a commit id belongs: a common mistake in CI configuration.
    const url = await restart({ COMMIT_SHA: 'release-2024.06' });
    const run = await runOnce(url);
    expect(run.status).toBe('failed');
    expect(run.error_message).toMatch(/run_metadata\.json failed validation \(invalid commit_sha: must be a lowercase hex commit id/);
    expect(run.error_message).toContain(run.run_dir);
    for (const name of ['results.jsonl', 'summary.json', 'run_metadata.json']) expect(existsSync(path.join(run.run_dir, name)), name).toBe(true);
    const job = (await request(url, 'GET', `/v1/jobs/${run.job_id}`)).body;
    expect(job).toMatchObject({ status: 'failed', attempts: 1 });
    expect(job.error_message).toMatch(/invalid commit_sha/);

    const check = await runCli(['eval', 'validate', run.run_dir], {});
    expect(check.code, check.stderr).toBe(13);
    expect(check.stdout).toMatch(/problem: run_metadata\.json: invalid commit_sha/);
    expect(check.stdout).toMatch(/INVALID/);
  });

  it('eval validate names missing required keys, missing files and tampered results', async () => {
    const url = await restart({ COMMIT_SHA: '0123abcd0123abcd' });
    const run = await runOnce(url);
    expect(run.status, run.error_message).toBe('succeeded');
    const ok = await runCli(['eval', 'validate', run.run_dir], {});
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/valid: .* \(5 cases\)/);

    const copy = path.join(scratch, 'copy');
    cpSync(run.run_dir, copy, { recursive: true });
    const metadata = JSON.parse(readFileSync(path.join(copy, 'run_metadata.json'), 'utf8'));
    delete metadata.seed;
    delete metadata.data_snapshot_id;
    writeFileSync(path.join(copy, 'run_metadata.json'), JSON.stringify(metadata));
    rmSync(path.join(copy, 'summary.json'));
    writeFileSync(path.join(copy, 'results.jsonl'), readFileSync(path.join(copy, 'results.jsonl'), 'utf8').replace('"id":"c1"', '"id":"c1-edited"'));
    const bad = await runCli(['eval', 'validate', '--json', copy], {});
    expect(bad.code).toBe(13);
    const report = JSON.parse(bad.stdout);
    expect(report.problems).toEqual(
      expect.arrayContaining([
        'missing result file: summary.json',
        'run_metadata.json: missing required key: data_snapshot_id',
        'run_metadata.json: missing required key: seed',
        expect.stringMatching(/^results\.jsonl hashes to [0-9a-f]{64}, not the results_sha256 in run_metadata\.json/),
      ]),
    );
  });
});

describe('MLflow publishing', () => {
  it('publishes a finished run: tags, params within the batch limits, metrics, the three files, FINISHED', async () => {
    const url = await restart({ COMMIT_SHA: '0123abcd0123abcd', MLFLOW_TRACKING_URI: mlflow.url, MLFLOW_EXPERIMENT_NAME: 'evalops-it' });
    // 150 params: more than one LogBatch request may carry; one value longer than MLflow accepts.
    const params: Record<string, unknown> = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${String(i).padStart(3, '0')}`, i]));
    params.long_text = 'x'.repeat(7000);
    const run = await runOnce(url, { params, name: 'nightly qa' });
    expect(run.status, run.error_message).toBe('succeeded');
    expect(run.mlflow).toMatchObject({ tracking_uri: mlflow.url, experiment_id: expect.any(String), run_id: expect.any(String) });

    expect([...mlflow.experiments.keys()]).toContain('evalops-it');
    const published = mlflow.runs.get(run.mlflow.run_id)!;
    expect(published.info.status).toBe('FINISHED');
    expect(published.tags.get('mlflow.runName')).toBe('nightly qa');
    expect(published.tags.get('mlflow.source.git.commit')).toBe('0123abcd0123abcd');
    expect(published.tags.get('evalops.run_id')).toBe(run.run_id);
    expect(published.params.get('prompt_version')).toBe('meta@1');
    expect(published.params.get('data_snapshot_id')).toBe(snapshot);
    expect(published.params.get('seed')).toBe('3');
    expect(published.params.get('mode')).toBe('live');
    expect(published.params.get('params.p149')).toBe('149');
    expect(published.params.get('params.long_text')).toMatch(/\.\.\.\[truncated\]$/);
    expect(published.params.get('params.long_text')!.length).toBeLessThanOrEqual(6000);
    const batches = mlflow.requests.filter((r) => r.path === '/api/2.0/mlflow/runs/log-batch');
    expect(batches.length).toBeGreaterThanOrEqual(2);
    for (const b of batches) expect(((b.body as { params?: unknown[] }).params ?? []).length).toBeLessThanOrEqual(100);
    const metrics = new Map(published.metrics.map((m) => [m.key, m.value]));
    expect(metrics.get('scorers.exact.pass_rate')).toBe(1);
    expect(metrics.get('cases')).toBe(5);
    const artifacts = [...mlflow.artifacts.keys()].filter((k) => k.includes(run.mlflow.run_id)).map((k) => k.split('/').pop()).sort();
    expect(artifacts).toEqual(['results.jsonl', 'run_metadata.json', 'summary.json']);
    for (const name of artifacts) {
      const key = [...mlflow.artifacts.keys()].find((k) => k.includes(run.mlflow.run_id) && k.endsWith(`/${name}`))!;
      expect(mlflow.artifacts.get(key)).toEqual(readFileSync(path.join(run.run_dir, name!)));
    }
  });

  it('fails the run with a sentence naming the URI and the status when MLflow answers 403, keeping the files', async () => {
    mlflow.failWith(403);
    try {
      const run = await runOnce(server!.url, { seed: 4 });
      expect(run.status).toBe('failed');
      expect(run.error_message).toContain(`MLflow at ${mlflow.url}`);
      expect(run.error_message).toMatch(/HTTP 403: the credentials were accepted but lack permission/);
      for (const name of ['results.jsonl', 'summary.json', 'run_metadata.json']) expect(existsSync(path.join(run.run_dir, name))).toBe(true);
    } finally {
      mlflow.failWith(null);
    }
  });

  it('fails the run naming the URI when the tracking server is unreachable', async () => {
    const url = await restart({ COMMIT_SHA: '0123abcd0123abcd', MLFLOW_TRACKING_URI: 'http://127.0.0.1:9' });
    const run = await runOnce(url, { seed: 5 });
    expect(run.status).toBe('failed');
    expect(run.error_message).toMatch(/MLflow tracking server at http:\/\/127\.0\.0\.1:9 is unreachable \(ECONNREFUSED\).*check MLFLOW_TRACKING_URI/);
  });
});
