import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { assertSpecAllowed, ProviderNotAllowedError, providerPolicyFromConfig } from '../../src/evals/providers/provider-policy.ts';
import { parseEvaluationRequest } from '../../src/evals/evaluation-spec.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { deletePrefix, spawnWorker, TEST_REDIS_URL, testPrefix, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The policy is checked again where the provider is built: in queue mode that is a worker, whose
 * environment may be stricter than the API's. Here the API (loopback, defaults) accepts a run that
 * the worker's own PROVIDER_ALLOWED_HOSTS and PROVIDER_ENV_ALLOWLIST refuse: the run fails with the
 * sentence the API would have answered under the worker's settings, and the endpoint receives
 * nothing.
 */

const KEY = 'sk-worker-policy-4e1a7c9d';
const WORKER_POLICY = { PROVIDER_ALLOWED_HOSTS: 'models.internal.example', PROVIDER_ENV_ALLOWLIST: 'OPENAI_API_KEY' };
let db: TestDatabase;
let server: TestServer;
let listener: FakeOpenAIServer;
let worker: WorkerProcess | undefined;
const prefix = testPrefix('polw');

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  listener = await startFakeOpenAIServer({});
  server = await startTestServer(db, { JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, QUEUE_RECONCILE_MS: '500' });
  worker = await spawnWorker({ ...db.env, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, WORKER_TEST_API_KEY: KEY, ...WORKER_POLICY }, ['--name', 'policy-worker']);
});

afterAll(async () => {
  await worker?.stop('SIGTERM', 10_000);
  await server?.close(2000);
  await listener?.close();
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

describe('the worker side of the provider policy', () => {
  it("fails a run the API accepted when the worker's settings refuse it, with the same sentence, calling nothing", async () => {
    await request(server.url, 'POST', '/v1/prompts', textPrompt('policyw'));
    const snapshot = (await uploadDataset(server.url, casesJsonl(3, 'pw'))).body.data_snapshot_id;
    const body = {
      prompt_version: 'policyw@1',
      data_snapshot_id: snapshot,
      provider: { type: 'openai', base_url: listener.url, api_key_env: 'WORKER_TEST_API_KEY' },
      model: 'm',
    };
    const res = await request(server.url, 'POST', '/v1/evaluations', body);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const run = await waitForRun(server.url, res.body.run_id, 60_000);
    expect(run.status).toBe('failed');

    // The sentence a server with the worker's settings answers at submission.
    let expected = '';
    try {
      assertSpecAllowed(providerPolicyFromConfig(loadConfig(WORKER_POLICY)), parseEvaluationRequest(body));
    } catch (err) {
      expected = (err as ProviderNotAllowedError).message;
    }
    expect(expected).toContain('PROVIDER_ALLOWED_HOSTS');
    expect(expected).toContain('PROVIDER_ENV_ALLOWLIST');
    expect(run.error_message).toBe(expected);
    expect(listener.requests).toHaveLength(0);
    const job = await request(server.url, 'GET', `/v1/jobs/${run.job_id}`);
    expect(job.body.status).toBe('failed');
    expect(job.body.attempts).toBe(1);
  });
});
