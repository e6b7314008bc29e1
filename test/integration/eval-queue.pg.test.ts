import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateRunMetadata } from '../../src/evals/run-metadata.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { runCli, waitFor } from '../helpers/processes.ts';
import { deletePrefix, spawnWorker, TEST_REDIS_URL, testPrefix, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Evaluations in queue mode: the API (this process, JOB_RUNNER_MODE=queue) only records and
 * dispatches; an `evalops worker` process runs the evaluation job, reading the provider key from
 * its own environment and writing the run folder to the shared DATA_DIR.
 */

const SECRET = 'sk-test-queue-7d2e91';
let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let worker: WorkerProcess | undefined;
const prefix = testPrefix('evalq');

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  openai = await startFakeOpenAIServer({ apiKey: SECRET });
  server = await startTestServer(db, { JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500', COMMIT_SHA: 'abc1234def' });
  worker = await spawnWorker({ ...db.env, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, COMMIT_SHA: 'abc1234def', QUEUE_TEST_API_KEY: SECRET }, ['--name', 'eval-worker']);
});

afterAll(async () => {
  await worker?.stop('SIGTERM', 10_000);
  await server?.close(2000);
  await openai?.close();
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

describe('an evaluation in queue mode', () => {
  it('runs on a worker: three files, valid metadata, and eval verify reproduces it byte for byte', async () => {
    await request(server.url, 'POST', '/v1/prompts', textPrompt('queued'));
    const snapshot = (await uploadDataset(server.url, casesJsonl(15, 'queued'))).body.data_snapshot_id;
    const res = await request(server.url, 'POST', '/v1/evaluations', {
      prompt_version: 'queued@1',
      data_snapshot_id: snapshot,
      provider: { type: 'openai', base_url: openai.url, api_key_env: 'QUEUE_TEST_API_KEY' },
      model: 'gpt-queue',
      concurrency: 4,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const run = await waitForRun(server.url, res.body.run_id, 60_000);
    expect(run.status, run.error_message).toBe('succeeded');
    expect(run.summary).toMatchObject({ cases: 15, errors: 0, passed: 15 });
    expect(openai.requests.length).toBe(15);
    for (const name of ['results.jsonl', 'summary.json', 'run_metadata.json']) expect(existsSync(path.join(run.run_dir, name))).toBe(true);
    expect(validateRunMetadata(JSON.parse(readFileSync(path.join(run.run_dir, 'run_metadata.json'), 'utf8')))).toEqual({ ok: true });
    // The API process has no runner in queue mode: the worker ran it.
    // Its log line may reach stdout a moment after the status is written.
    await waitFor('the worker to log the run', async () => worker!.logs.some((l) => l.msg === 'evaluation run succeeded' && l.run_id === run.run_id && l.job_id === run.job_id), 10_000);

    const verify = await runCli(['eval', 'verify', run.run_id, '--remote', server.url], {}, 90_000);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/reproduced: byte for byte/);
    expect(openai.requests.length).toBe(15);
  });
});
