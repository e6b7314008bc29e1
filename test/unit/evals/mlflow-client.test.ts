import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  flattenParams,
  MLFLOW_LIMITS,
  MlflowClient,
  MlflowError,
  mlflowOptionsFromEnv,
  planLogBatches,
  TRUNCATION_MARKER,
  truncateValue,
} from '../../../src/evals/mlflow-client.ts';
import { start, type FakeMlflowServer } from '../../helpers/fake-mlflow-server.ts';

const noWait = async (): Promise<void> => {};

let server: FakeMlflowServer;
let locked: FakeMlflowServer;
let dir: string;

beforeAll(async () => {
  server = await start({ token: 'tok-123' });
  locked = await start({ username: 'ada', password: 'pw' });
  dir = mkdtempSync(join(tmpdir(), 'evalops-mlflow-'));
});

afterAll(async () => {
  await server.close();
  await locked.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('planLogBatches', () => {
  it('splits at 100 params, 100 tags, 1000 metrics and 1000 items per request', () => {
    const params = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, `v${i}`]));
    const tags = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`t${i}`, `v${i}`]));
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `m${i}`, value: i, timestamp: 1, step: 0 }));
    const batches = planLogBatches({ params, tags, metrics }, 5);
    for (const b of batches) {
      expect(b.params.length).toBeLessThanOrEqual(MLFLOW_LIMITS.paramsPerBatch);
      expect(b.tags.length).toBeLessThanOrEqual(MLFLOW_LIMITS.tagsPerBatch);
      expect(b.metrics.length).toBeLessThanOrEqual(MLFLOW_LIMITS.metricsPerBatch);
      expect(b.params.length + b.tags.length + b.metrics.length).toBeLessThanOrEqual(MLFLOW_LIMITS.itemsPerBatch);
    }
    expect(batches.flatMap((b) => b.params)).toHaveLength(250);
    expect(batches.flatMap((b) => b.tags)).toHaveLength(150);
    expect(batches.flatMap((b) => b.metrics)).toHaveLength(2500);
    // 250 params -> 3 requests; tags and metrics fill the rest: 3400 items / 1000 -> at least 4 requests.
    expect(batches.length).toBeGreaterThanOrEqual(4);
    expect(batches[0]?.params).toHaveLength(100);
  });

  it('keeps each request under the size limit', () => {
    const params = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, 'x'.repeat(6000)]));
    const tags = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`t${i}`, 'y'.repeat(5000)]));
    const batches = planLogBatches({ params, tags });
    for (const b of batches) expect(Buffer.byteLength(JSON.stringify({ run_id: 'r', ...b }))).toBeLessThan(1_000_000);
    expect(batches.length).toBeGreaterThan(1);
  });

  it('truncates long values with a marker, stringifies objects and drops non-finite metrics', () => {
    const long = 'a'.repeat(7000);
    const [batch] = planLogBatches({ params: { long, obj: { b: 1, a: [2] }, n: 3 }, metrics: [{ key: 'nan', value: Number.NaN }, { key: 'ok', value: 1 }] }, 99);
    const value = batch?.params.find((p) => p.key === 'long')?.value ?? '';
    expect(value).toHaveLength(MLFLOW_LIMITS.paramValueLength);
    expect(value.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(batch?.params.find((p) => p.key === 'obj')?.value).toBe('{"a":[2],"b":1}');
    expect(batch?.params.find((p) => p.key === 'n')?.value).toBe('3');
    expect(batch?.metrics).toEqual([{ key: 'ok', value: 1, timestamp: 99, step: 0 }]);
    expect(truncateValue('short', 10)).toBe('short');
  });

  it('flattens metadata into dotted params', () => {
    expect(flattenParams({ provider: { type: 'openai', base_url: null }, params: {}, scorers: [{ name: 'a' }], seed: 1 })).toEqual([
      { key: 'params', value: '{}' },
      { key: 'provider.base_url', value: 'null' },
      { key: 'provider.type', value: 'openai' },
      { key: 'scorers', value: '[{"name":"a"}]' },
      { key: 'seed', value: '1' },
    ]);
  });
});

describe('MlflowClient against a fake tracking server', () => {
  it('reads its options from the environment', () => {
    expect(mlflowOptionsFromEnv({})).toBeNull();
    expect(mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'http://m:5000', MLFLOW_TRACKING_TOKEN: 't' })).toEqual({
      trackingUri: 'http://m:5000',
      token: 't',
      username: undefined,
      password: undefined,
    });
  });

  it('gets or creates an experiment, creates a run with the tags, logs, uploads and terminates', async () => {
    const client = new MlflowClient({ trackingUri: `${server.url}/`, token: 'tok-123', sleep: noWait });
    const experimentId = await client.getOrCreateExperiment('evalops/qa');
    expect(await client.getOrCreateExperiment('evalops/qa')).toBe(experimentId);
    const creates = server.requests.filter((r) => r.path === '/api/2.0/mlflow/experiments/create');
    expect(creates).toHaveLength(1);
    expect(server.requests.every((r) => r.headers.authorization === 'Bearer tok-123')).toBe(true);

    const run = await client.createRun({ experimentId, runName: 'qa@3 on sha256:ab', commitSha: 'abc1234', evalopsRunId: 'run_1', startTime: 1000 });
    expect(run.artifactUri).toBe(`mlflow-artifacts:/${experimentId}/${run.runId}/artifacts`);
    const stored = server.runs.get(run.runId);
    expect(Object.fromEntries(stored?.tags ?? [])).toEqual({
      'mlflow.runName': 'qa@3 on sha256:ab',
      'mlflow.source.git.commit': 'abc1234',
      'evalops.run_id': 'run_1',
    });

    const before = server.requests.length;
    const params = Object.fromEntries(Array.from({ length: 230 }, (_, i) => [`p${String(i).padStart(3, '0')}`, i === 0 ? 'z'.repeat(9000) : `v${i}`]));
    const metrics = Array.from({ length: 1500 }, (_, i) => ({ key: `m${i}`, value: i / 10, timestamp: 5, step: 0 }));
    const { requests } = await client.logBatch(run.runId, { params, metrics, tags: { 'evalops.mode': 'live' } });
    const logged = server.requests.slice(before);
    expect(logged).toHaveLength(requests);
    expect(requests).toBeGreaterThanOrEqual(3);
    for (const r of logged) {
      const body = r.body as { params: unknown[]; metrics: unknown[]; tags: unknown[] };
      expect(body.params.length).toBeLessThanOrEqual(100);
      expect(body.metrics.length).toBeLessThanOrEqual(1000);
      expect(body.params.length + body.metrics.length + body.tags.length).toBeLessThanOrEqual(1000);
    }
    expect(stored?.params.size).toBe(230);
    expect(stored?.params.get('p000')).toBe(`${'z'.repeat(6000 - TRUNCATION_MARKER.length)}${TRUNCATION_MARKER}`);
    expect(stored?.metrics).toHaveLength(1500);
    expect(stored?.tags.get('evalops.mode')).toBe('live');

    const file = join(dir, 'results.jsonl');
    const content = Array.from({ length: 5000 }, (_, i) => `{"id":"${i}","output":"é ${i}"}\n`).join('');
    writeFileSync(file, content);
    await client.uploadArtifact(run, 'results.jsonl', { filePath: file }, 'application/x-ndjson');
    await client.uploadArtifact(run, 'nested/run metadata.json', { data: '{"seed":1}' }, 'application/json');
    expect(server.artifacts.get(`${experimentId}/${run.runId}/artifacts/results.jsonl`)?.toString('utf8')).toBe(content);
    expect(server.artifacts.get(`${experimentId}/${run.runId}/artifacts/nested/run metadata.json`)?.toString('utf8')).toBe('{"seed":1}');
    const put = server.requests.find((r) => r.method === 'PUT' && r.path.endsWith('results.jsonl'));
    expect(put?.headers['content-length']).toBe(String(Buffer.byteLength(content)));

    await client.setTerminated(run.runId, 'FINISHED', 2000);
    expect(stored?.info.status).toBe('FINISHED');
    expect(stored?.info.end_time).toBe(2000);
  });

  it('sends basic auth from the URI or options and never shows the password', async () => {
    const port = new URL(locked.url).port;
    const fromUri = new MlflowClient({ trackingUri: `http://ada:pw@127.0.0.1:${port}`, sleep: noWait });
    expect(fromUri.uri).toBe(`http://127.0.0.1:${port}`);
    await expect(fromUri.getOrCreateExperiment('e')).resolves.toBe('1');
    const wrong = new MlflowClient({ trackingUri: locked.url, username: 'ada', password: 'nope', sleep: noWait });
    const error = (await wrong.getOrCreateExperiment('e').catch((e: unknown) => e)) as MlflowError;
    expect(error).toBeInstanceOf(MlflowError);
    expect(error.upstreamStatus).toBe(401);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `MLflow at ${locked.url} refused GET /api/2.0/mlflow/experiments/get-by-name with HTTP 401: the credentials were missing or rejected; ` +
        'check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (UNAUTHENTICATED: You are not authenticated.)',
    );
    expect(error.message).not.toContain('nope');
  });

  it('explains a 403 as missing permission, naming the URI and status', async () => {
    const client = new MlflowClient({ trackingUri: server.url, token: 'tok-123', sleep: noWait });
    server.failWith(403);
    try {
      const error = (await client.createRun({ experimentId: '1', runName: 'r', commitSha: 'abc1234', evalopsRunId: 'x' }).catch((e: unknown) => e)) as MlflowError;
      expect(error).toBeInstanceOf(MlflowError);
      expect(error.upstreamStatus).toBe(403);
      expect(error.uri).toBe(server.url);
      expect(error.message).toMatch(
        new RegExp(`^MLflow at ${server.url.replace(/\./g, '\\.')} refused POST /api/2\\.0/mlflow/runs/create with HTTP 403: the credentials were accepted but lack permission`),
      );
      expect(error.message).toContain('PERMISSION_DENIED');
    } finally {
      server.failWith(null);
    }
  });

  it('retries 5xx and then reports it', async () => {
    const client = new MlflowClient({ trackingUri: server.url, token: 'tok-123', maxAttempts: 3, sleep: noWait });
    server.failWith(503);
    const before = server.requests.length;
    try {
      const error = (await client.setTerminated('run0001', 'FAILED').catch((e: unknown) => e)) as MlflowError;
      expect(error.upstreamStatus).toBe(503);
      expect(error.retryable).toBe(true);
      expect(server.requests.length - before).toBe(3);
    } finally {
      server.failWith(null);
    }
  });

  it('says an unreachable server is unreachable and points at MLFLOW_TRACKING_URI', async () => {
    const client = new MlflowClient({ trackingUri: 'http://user:secret@127.0.0.1:9', maxAttempts: 2, sleep: noWait });
    const error = (await client.getOrCreateExperiment('e').catch((e: unknown) => e)) as MlflowError;
    expect(error).toBeInstanceOf(MlflowError);
    expect(error.upstreamStatus).toBeNull();
    expect(error.message).toMatch(/^MLflow tracking server at http:\/\/127\.0\.0\.1:9 is unreachable \(ECONNREFUSED\) during GET .*check MLFLOW_TRACKING_URI/);
    expect(error.message).not.toContain('secret');
  });

  it('refuses a run whose artifacts are not behind the proxy', async () => {
    const client = new MlflowClient({ trackingUri: server.url, token: 'tok-123', sleep: noWait });
    await expect(
      client.uploadArtifact({ runId: 'r', experimentId: '1', artifactUri: 's3://bucket/1/r/artifacts' }, 'a.txt', { data: 'x' }),
    ).rejects.toThrow(/artifact location is s3:\/\/bucket\/1\/r\/artifacts, not the artifact proxy/);
  });
});
