import { randomUUID } from 'node:crypto';
import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/database.ts';
import { MIGRATIONS } from '../../src/db/migrations/index.ts';
import { migrateUp } from '../../src/db/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * Migration 0007 on a database the old jobs API left with several active jobs on one evaluation
 * run: it keeps the job the run points to, cancels the others saying why, and from then on the
 * database refuses a second active job of a run.
 */

let db: TestDatabase;
let handle: DatabaseHandle;

beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  handle = await openDatabase({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, poolSize: 2 });
  const before = new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0007')) },
    migrationTableName: 'evalops_migrations',
    migrationLockTableName: 'evalops_migrations_lock',
  });
  const result = await before.migrateToLatest();
  if (result.error) throw result.error;
});

afterAll(async () => {
  await handle?.close();
  await db?.cleanup();
});

const insertJob = (jobId: string, runId: string, status: string, minutesAgo: number) =>
  sql`INSERT INTO jobs (job_id, type, status, payload, created_at) VALUES (${jobId}, 'evaluation', ${status}, ${JSON.stringify({ run_id: runId })}::jsonb, now() - ${minutesAgo} * INTERVAL '1 minute')`.execute(handle.db);

describe('migration 0007', () => {
  it('cancels the extra active jobs of a run, keeps the one the run points to, then holds one per run', async () => {
    const run = randomUUID();
    const [own, older, newer, done] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await sql`INSERT INTO evaluation_runs (run_id, job_id, status, prompt_version, data_snapshot_id, provider_type, model, mode, seed, spec)
              VALUES (${run}, ${own}, 'running', 'p@1', ${`sha256:${'0'.repeat(64)}`}, 'echo', 'echo', 'live', 0, '{}'::jsonb)`.execute(handle.db);
    await insertJob(older, run, 'queued', 10);
    await insertJob(own, run, 'running', 5);
    await insertJob(newer, run, 'running', 1);
    await insertJob(done, run, 'succeeded', 20);
    const alone = randomUUID();
    await insertJob(randomUUID(), alone, 'queued', 3);

    const result = await migrateUp(handle.db);
    expect(result.error).toBeUndefined();

    const rows = (await sql<{ job_id: string; status: string; error_message: string | null }>`SELECT job_id, status, error_message FROM jobs WHERE payload->>'run_id' = ${run}`.execute(handle.db)).rows;
    const by = new Map(rows.map((r) => [r.job_id, r]));
    expect(by.get(own)).toMatchObject({ status: 'running', error_message: null });
    expect(by.get(done)!.status).toBe('succeeded');
    for (const id of [older, newer]) {
      expect(by.get(id)!.status).toBe('cancelled');
      expect(by.get(id)!.error_message).toBe(`cancelled by migration 0007: job ${own} also executes run ${run}; a run is executed by one job at a time`);
    }
    const activeAlone = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE payload->>'run_id' = ${alone} AND status = 'queued'`.execute(handle.db)).rows[0]!;
    expect(Number(activeAlone.n)).toBe(1);
    await expect(insertJob(randomUUID(), run, 'queued', 0)).rejects.toMatchObject({ code: '23505' });
    // A finished job of the run does not count.
    await insertJob(randomUUID(), run, 'failed', 0);
  });
});
