import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '../../../src/evals/mlflow-client.ts';
import { flattenMetrics, metricKey, publishRunToMlflow } from '../../../src/evals/mlflow-publish.ts';
import { start, type FakeMlflowServer } from '../../helpers/fake-mlflow-server.ts';

let server: FakeMlflowServer;
let dir: string;

beforeAll(async () => {
  server = await start();
  dir = mkdtempSync(join(tmpdir(), 'evalops-publish-'));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const metadata = {
  run_id: 'run_42',
  commit_sha: 'abc1234',
  prompt_version: 'qa@2',
  data_snapshot_id: `sha256:${'0'.repeat(64)}`,
  seed: 7,
  mode: 'replay',
  provider: { type: 'echo', base_url: null },
  params: { temperature: 0 },
};

describe('flattenMetrics', () => {
  it('keeps finite numbers under dotted, MLflow-safe keys', () => {
    expect(flattenMetrics({ cases: 3, scorers: { 'exact:v2': { mean: 0.5, pass_rate: 1 } }, note: 'x', bad: Number.NaN }, 9)).toEqual([
      { key: 'cases', value: 3, timestamp: 9, step: 0 },
      { key: 'scorers.exact_v2.mean', value: 0.5, timestamp: 9, step: 0 },
      { key: 'scorers.exact_v2.pass_rate', value: 1, timestamp: 9, step: 0 },
    ]);
    expect(metricKey('a/b c-d.e_f')).toBe('a/b c-d.e_f');
  });
});

describe('publishRunToMlflow', () => {
  it('creates the run, logs params, metrics and tags, uploads the files and finishes', async () => {
    const results = join(dir, 'results.jsonl');
    writeFileSync(results, '{"id":"1"}\n');
    const client = new MlflowClient({ trackingUri: server.url });
    const published = await publishRunToMlflow(client, {
      experimentName: 'evalops',
      runName: 'qa@2 run_42',
      metadata,
      metrics: flattenMetrics({ scorers: { exact: { mean: 1 } } }, 1),
      artifacts: [{ path: 'results.jsonl', filePath: results, contentType: 'application/x-ndjson' }],
      status: 'FINISHED',
    });
    const run = server.runs.get(published.runId);
    expect(run?.info.status).toBe('FINISHED');
    expect(run?.tags.get('mlflow.source.git.commit')).toBe('abc1234');
    expect(run?.tags.get('evalops.run_id')).toBe('run_42');
    expect(run?.tags.get('evalops.mode')).toBe('replay');
    expect(run?.params.get('provider.type')).toBe('echo');
    expect(run?.params.get('params.temperature')).toBe('0');
    expect(run?.metrics).toEqual([{ key: 'scorers.exact.mean', value: 1, timestamp: 1, step: 0 }]);
    expect(server.artifacts.get(`${published.experimentId}/${published.runId}/artifacts/results.jsonl`)?.toString()).toBe('{"id":"1"}\n');
  });

  it('marks the run FAILED when a later step fails, and rethrows', async () => {
    const client = new MlflowClient({ trackingUri: server.url });
    await expect(
      publishRunToMlflow(client, {
        experimentName: 'evalops',
        runName: 'broken',
        metadata,
        metrics: [],
        artifacts: [{ path: 'missing.jsonl', filePath: join(dir, 'does-not-exist.jsonl') }],
        status: 'FINISHED',
      }),
    ).rejects.toThrow(/ENOENT/);
    const run = [...server.runs.values()].find((r) => r.info.run_name === 'broken');
    expect(run?.info.status).toBe('FAILED');
  });
});
