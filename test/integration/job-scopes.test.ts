import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertJobs } from '../../src/jobs/job-store.ts';
import { FINAL, textPrompt } from '../helpers/eval-helpers.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * A job of an evaluation run belongs to the run: it is never submitted through the jobs API, acting
 * on it needs `evals:write` (the scope of the evaluation routes), and the database lets one job at a
 * time execute a run, whoever writes the table.
 */

let db: TestDatabase;
let server: TestServer;
const keys = { admin: '', jobs: '', evals: '' };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
let snapshot = '';
let prompt = '';

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { AUTH_CACHE_TTL_MS: '60000' });
  const create = async (name: string, scopes: string[], as?: string) => {
    const res = await server.api('POST', '/v1/admin/api-keys', { name, scopes }, as ? bearer(as) : {});
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.key as string;
  };
  keys.admin = await create('scopes-admin', ['admin']);
  keys.jobs = await create('jobs-only', ['read', 'jobs:write'], keys.admin);
  keys.evals = await create('evals-only', ['read', 'evals:write'], keys.admin);
  const pushed = await server.api('POST', '/v1/prompts', textPrompt('scopes'), bearer(keys.evals));
  expect([200, 201]).toContain(pushed.status);
  prompt = pushed.body.prompt_version;
  const rows = '{"id":"a","vars":{"text":"one"},"expected":"one"}\n';
  const res = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...bearer(keys.evals) }, body: rows, signal: AbortSignal.timeout(15_000) });
  expect([200, 201]).toContain(res.status);
  snapshot = ((await res.json()) as { data_snapshot_id: string }).data_snapshot_id;
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

/** A run whose one case waits `delayMs` in the echo provider: running for as long as a test needs. */
async function startRun(delayMs: number): Promise<{ run_id: string; job_id: string }> {
  const res = await server.api('POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, provider: { type: 'echo', delay_ms: delayMs }, model: 'echo', scorers: [{ name: 'match', type: 'exact' }] }, bearer(keys.evals));
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return { run_id: res.body.run_id, job_id: res.body.job_id };
}

const jobsOfRun = async (runId: string) =>
  (await sql<{ job_id: string; status: string }>`SELECT job_id, status FROM jobs WHERE type = 'evaluation' AND payload->>'run_id' = ${runId}`.execute(server.database.db)).rows;

/** Polls the run (with a key: authentication is on) until its status is one of `statuses`. */
async function waitForRun(runId: string, statuses: string[] = FINAL): Promise<any> {
  return waitFor(`run ${runId} to reach ${statuses.join('/')}`, async () => {
    const { body } = await server.api('GET', `/v1/evaluations/${runId}`, undefined, bearer(keys.evals));
    return statuses.includes(body.status) ? body : undefined;
  }, 30_000, 50);
}

const waitRunning = (runId: string) => waitForRun(runId, ['running']);

describe('internal job types', () => {
  it('refuses an evaluation job through POST /v1/jobs and the batch, naming POST /v1/evaluations, and starts nothing', async () => {
    const run = await startRun(30_000);
    await waitRunning(run.run_id);
    const single = await server.api('POST', '/v1/jobs', { type: 'evaluation', payload: { run_id: run.run_id } }, bearer(keys.jobs));
    expect(single.status, JSON.stringify(single.body)).toBe(400);
    expect(single.body.error.code).toBe('VALIDATION');
    expect(single.body.error.message).toMatch(/type: jobs of type evaluation .*POST \/v1\/evaluations/);
    // Even the key that may act on evaluations cannot start a run's job as a bare job.
    const asAdmin = await server.api('POST', '/v1/jobs', { type: 'evaluation', payload: { run_id: run.run_id } }, bearer(keys.admin));
    expect(asAdmin.status).toBe(400);
    const batch = await server.api('POST', '/v1/jobs/batch', { jobs: [{ type: 'noop' }, { type: 'evaluation', payload: { run_id: run.run_id } }] }, bearer(keys.jobs));
    expect(batch.status).toBe(400);
    expect(batch.body.error.message).toMatch(/jobs\.1\.type: jobs of type evaluation .*POST \/v1\/evaluations/);
    expect(await jobsOfRun(run.run_id)).toHaveLength(1);
    // The list of known types a typo gets back names only the types one may submit.
    const typo = await server.api('POST', '/v1/jobs', { type: 'evaluatoin' }, bearer(keys.jobs));
    expect(typo.body.error.message).toMatch(/known types: noop, sleep$/);
    await server.api('POST', `/v1/evaluations/${run.run_id}/cancel`, undefined, bearer(keys.evals));
    await waitForRun(run.run_id);
  });
});

describe('acting on a job needs the scope of its kind', () => {
  it('a jobs:write key cannot cancel or retry an evaluation job; an evals:write key can', async () => {
    const run = await startRun(30_000);
    await waitRunning(run.run_id);
    const cancel = await server.api('POST', `/v1/jobs/${run.job_id}/cancel`, undefined, bearer(keys.jobs));
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(403);
    expect(cancel.body.error).toMatchObject({ code: 'FORBIDDEN', details: { needed: 'evals:write', key_name: 'jobs-only' } });
    expect(cancel.body.error.message).toMatch(/cancel on a job of type evaluation needs scope "evals:write"; key "jobs-only" has read, jobs:write/);
    expect((await server.api('GET', `/v1/jobs/${run.job_id}`, undefined, bearer(keys.jobs))).body.cancel_requested_at).toBeNull();

    const cancelled = await server.api('POST', `/v1/jobs/${run.job_id}/cancel`, undefined, bearer(keys.evals));
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(202);
    const done = await waitForRun(run.run_id);
    expect(done.status).toBe('cancelled');

    const retry = await server.api('POST', `/v1/jobs/${run.job_id}/retry`, undefined, bearer(keys.jobs));
    expect(retry.status).toBe(403);
    expect(retry.body.error.details.needed).toBe('evals:write');
    expect((await server.api('GET', `/v1/jobs/${run.job_id}`, undefined, bearer(keys.jobs))).body.status).toBe('cancelled');
    // Reading stays `read`.
    expect((await server.api('GET', `/v1/jobs/${run.job_id}`, undefined, bearer(keys.evals))).status).toBe(200);
  });

  it('other jobs still need jobs:write: an evals:write key cannot cancel them', async () => {
    const job = await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 }, run_at: new Date(Date.now() + 3_600_000).toISOString() }, bearer(keys.jobs));
    expect(job.status).toBe(202);
    const denied = await server.api('POST', `/v1/jobs/${job.body.job_id}/cancel`, undefined, bearer(keys.evals));
    expect(denied.status).toBe(403);
    expect(denied.body.error.details.needed).toBe('jobs:write');
    expect((await server.api('POST', `/v1/jobs/${job.body.job_id}/cancel`, undefined, bearer(keys.jobs))).status).toBe(202);
  });
});

describe('one job at a time per run, held by the database', () => {
  it('refuses a second queued or running job of a run, whoever writes the table', async () => {
    const run = await startRun(30_000);
    await waitRunning(run.run_id);
    const second = insertJobs(server.database.db, [{ jobId: randomUUID(), type: 'evaluation', payload: { run_id: run.run_id }, maxAttempts: 1, priority: 0, runAt: new Date(Date.now() + 3_600_000), idempotencyKey: undefined }]);
    await expect(second).rejects.toMatchObject({ code: '23505' });
    expect(await jobsOfRun(run.run_id)).toEqual([{ job_id: run.job_id, status: 'running' }]);
    await server.api('POST', `/v1/evaluations/${run.run_id}/cancel`, undefined, bearer(keys.evals));
    await waitForRun(run.run_id);
  });

  it('a retry while another job of the run is active is a 409 naming that job', async () => {
    const run = await startRun(30_000);
    await waitRunning(run.run_id);
    expect((await server.api('POST', `/v1/jobs/${run.job_id}/cancel`, undefined, bearer(keys.evals))).status).toBe(202);
    await waitFor('job cancelled', async () => ((await server.api('GET', `/v1/jobs/${run.job_id}`, undefined, bearer(keys.evals))).body.status === 'cancelled' ? true : undefined), 30_000, 50);
    // Another job of the run, queued for later (as an older API could leave one).
    const other = randomUUID();
    await insertJobs(server.database.db, [{ jobId: other, type: 'evaluation', payload: { run_id: run.run_id }, maxAttempts: 1, priority: 0, runAt: new Date(Date.now() + 3_600_000), idempotencyKey: undefined }]);
    const retry = await server.api('POST', `/v1/jobs/${run.job_id}/retry`, undefined, bearer(keys.evals));
    expect(retry.status, JSON.stringify(retry.body)).toBe(409);
    expect(retry.body.error.code).toBe('CONFLICT');
    expect(retry.body.error.message).toContain(`run ${run.run_id} already has job ${other} queued`);
    expect((await server.api('GET', `/v1/jobs/${run.job_id}`, undefined, bearer(keys.evals))).body.status).toBe('cancelled');
    await server.api('POST', `/v1/jobs/${other}/cancel`, undefined, bearer(keys.evals));
    // With the other job gone, the retry goes through and the run executes again.
    const again = await server.api('POST', `/v1/jobs/${run.job_id}/retry`, undefined, bearer(keys.evals));
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    await server.api('POST', `/v1/jobs/${run.job_id}/cancel`, undefined, bearer(keys.evals));
  });
});
