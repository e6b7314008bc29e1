import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { runCli, spawnServer, waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * A server killed (SIGKILL) in the middle of a live run: after a restart the run's job is taken
 * back when its lease expires, the run resumes, and no case whose answer was recorded before the
 * crash is sent to the provider again.
 */

const SECRET = 'sk-test-crash-5b1e0f7a9c';
const CASES = 40;
let db: TestDatabase;
let openai: FakeOpenAIServer;

beforeAll(async () => {
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({ apiKey: SECRET, latencyMs: 80 });
});

afterAll(async () => {
  await openai?.close();
  await db?.cleanup();
});

const env = () => ({ ...db.env, CRASH_TEST_API_KEY: SECRET, COMMIT_SHA: 'c0ffee0123', JOB_LEASE_MS: '2000', JOB_POLL_MS: '200' });

/** The text of the user message of a recorded request (`crash 17`). */
const asked = (r: { body: unknown }) => ((r.body as { messages: Array<{ role: string; content: string }> }).messages.find((m) => m.role === 'user')?.content ?? '');

describe('an evaluation interrupted by a crash', () => {
  it('resumes after a restart without asking the provider again for the cases already answered', async () => {
    const first = await spawnServer(env());
    let runId: string;
    try {
      await request(first.url, 'POST', '/v1/prompts', textPrompt('crash'));
      const snapshot = (await uploadDataset(first.url, casesJsonl(CASES, 'crash'))).body.data_snapshot_id;
      const res = await request(first.url, 'POST', '/v1/evaluations', {
        prompt_version: 'crash@1',
        data_snapshot_id: snapshot,
        provider: { type: 'openai', base_url: openai.url, api_key_env: 'CRASH_TEST_API_KEY' },
        model: 'gpt-crash',
        concurrency: 2,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      runId = res.body.run_id;
      await waitFor('a third of the cases to be asked', async () => openai.requests.length >= CASES / 3, 20_000, 20);
    } finally {
      first.proc.kill('SIGKILL');
      await first.stop('SIGKILL');
    }
    // Requests already on the wire have arrived by now; nothing else can come from the dead process.
    await sleep(300);
    const askedBeforeCrash = openai.requests.length;
    expect(askedBeforeCrash).toBeLessThan(CASES);

    const recordedSql = await runCli(['sql', '--json', "SELECT output FROM evaluation_responses WHERE model = 'gpt-crash'"], db.env);
    expect(recordedSql.code, recordedSql.stderr).toBe(0);
    const recordedTexts = new Set((JSON.parse(recordedSql.stdout) as Array<{ output: string }>).map((r) => r.output.replace(/^echo: /, '')));
    expect(recordedTexts.size).toBeGreaterThan(0);
    // Lost with the process: requests in flight (at most `concurrency`, 2) and answers still in the
    // record's write batch (at most 30 ms worth, about 1 here).
    expect(askedBeforeCrash - recordedTexts.size).toBeLessThanOrEqual(5);

    const second = await spawnServer(env());
    try {
      const done = await waitForRun(second.url, runId, 60_000);
      expect(done.status, done.error_message).toBe('succeeded');
      expect(done.summary).toMatchObject({ cases: CASES, errors: 0, passed: CASES });
      expect(done.summary.execution.cached).toBe(recordedTexts.size);

      const askedAfter = openai.requests.slice(askedBeforeCrash).map(asked);
      expect(askedAfter).toHaveLength(CASES - recordedTexts.size);
      expect(askedAfter.filter((t) => recordedTexts.has(t))).toEqual([]);

      const lines = readFileSync(path.join(done.run_dir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => l.id)).toEqual(Array.from({ length: CASES }, (_, i) => `c${i + 1}`));
      const job = (await request(second.url, 'GET', `/v1/jobs/${done.job_id}`)).body;
      expect(job).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(job.error_message).toMatch(/^lost: .* stopped renewing its lease/);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
  });
});
