import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { checkRunbookAnswers, RUNBOOK_FAILED_SAMPLE_QUERY, RUNBOOK_STATUS_QUERY, seedRunbookJobs } from '../helpers/runbook-fixtures.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  await seedRunbookJobs(db);
});
afterAll(async () => {
  await db?.cleanup();
});

function psql(query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db.pgDatabase!, '-X', '-c', query], { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`psql failed: ${stderr}`)) : resolve(stdout),
    );
  });
}

describe("the runbook's section-B SQL through psql", () => {
  it('runs verbatim against the jobs table and gives the right counts and sample', async () => {
    checkRunbookAnswers(await psql(RUNBOOK_STATUS_QUERY), await psql(RUNBOOK_FAILED_SAMPLE_QUERY));
  });
});
