import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import { FINAL, textPrompt } from '../helpers/eval-helpers.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * A failure retrying cannot fix (the host refuses the path: permissions, a read-only mount, a file
 * where a folder belongs) fails its job at the first attempt, saying why; a failure of a level that
 * moves on its own (a full disk) is retried as before.
 */

/** Fails every attempt with a system error of the given code, as fs calls do. */
const failingWith = (code: string): JobHandler<Record<string, unknown>> => ({
  type: `fails-${code.toLowerCase()}`,
  description: `fails with ${code}`,
  payloadSchema: z.record(z.string(), z.unknown()),
  async run() {
    throw Object.assign(new Error(`${code}: simulated, open '/srv/evalops/file'`), { code, errno: -1, syscall: 'open' });
  },
});

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, {}, { handlers: ['EACCES', 'EROFS', 'ENOSPC'].map(failingWith) });
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

const finished = (jobId: string) =>
  waitFor(`job ${jobId} finished`, async () => {
    const { body } = await server.api('GET', `/v1/jobs/${jobId}`);
    return FINAL.includes(body.status) ? body : undefined;
  }, 30_000);

describe('permanent errors', () => {
  it('EACCES and EROFS fail the job at its first attempt, naming the code; ENOSPC is retried', async () => {
    for (const code of ['EACCES', 'EROFS']) {
      const { body } = await server.api('POST', '/v1/jobs', { type: `fails-${code.toLowerCase()}`, max_attempts: 3 });
      const job = await finished(body.job_id);
      expect(job.status).toBe('failed');
      expect(job.attempts, code).toBe(1);
      expect(job.error_message).toMatch(new RegExp(`^attempt 1 of 3: ${code}: simulated.*\\(not retried: ${code}, .*needs a change on the host\\)$`));
    }
    const { body } = await server.api('POST', '/v1/jobs', { type: 'fails-enospc', max_attempts: 3 });
    const job = await finished(body.job_id);
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(3);
  });

  it('an evaluation whose run folder the host refuses fails once, with the reason on the run', async () => {
    const prompt = (await server.api('POST', '/v1/prompts', textPrompt('refused'))).body.prompt_version;
    const upload = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"id":"a","vars":{"text":"x"},"expected":"x"}\n', signal: AbortSignal.timeout(15_000) });
    const snapshot = ((await upload.json()) as { data_snapshot_id: string }).data_snapshot_id;
    // A file where the runs folder belongs: what an unwritable mount does to mkdir, even as root.
    const runs = path.join(db.dataDir, 'runs');
    rmSync(runs, { recursive: true, force: true });
    writeFileSync(runs, 'not a folder');
    try {
      const res = await server.api('POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, provider: { type: 'echo' }, model: 'echo', scorers: [{ name: 'match', type: 'exact' }] });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const run = await waitFor('run finished', async () => {
        const { body } = await server.api('GET', `/v1/evaluations/${res.body.run_id}`);
        return FINAL.includes(body.status) ? body : undefined;
      }, 30_000);
      expect(run.status).toBe('failed');
      expect(run.error_message).toMatch(/ENOTDIR/);
      const job = await finished(res.body.job_id);
      expect(job.attempts).toBe(1);
      expect(job.error_message).toMatch(/^attempt 1 of 3: ENOTDIR.*\(not retried: ENOTDIR, a path component is not a folder, needs a change on the host\)$/);
    } finally {
      rmSync(runs, { force: true });
      mkdirSync(runs, { recursive: true });
    }
  });
});
