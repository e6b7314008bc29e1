import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../helpers/test-database.ts';
import { runCli, spawnServer } from '../helpers/processes.ts';
import { checkRunbookAnswers, RUNBOOK_FAILED_SAMPLE_QUERY, RUNBOOK_STATUS_QUERY, seedRunbookJobs } from '../helpers/runbook-fixtures.ts';

const databases: TestDatabase[] = [];
async function freshDatabase(migrated: boolean): Promise<TestDatabase> {
  const d = await createTestDatabase({ migrated });
  databases.push(d);
  return d;
}
afterAll(async () => {
  for (const d of databases) await d.cleanup();
});

describe('evalops migrate', () => {
  it('current: exit 3 with pending migrations, 0 at head after `migrate up`; status lists each', async () => {
    const d = await freshDatabase(false);
    const before = await runCli(['migrate', 'current'], d.env);
    expect(before.code).toBe(3);
    expect(before.stdout).toContain('current: (none)');
    expect(before.stdout).toMatch(/\d+ pending: 0001-jobs[^;]*; run `npx evalops migrate up`/);

    const pendingStatus = await runCli(['migrate', 'status'], d.env);
    expect(pendingStatus.code).toBe(0);
    expect(pendingStatus.stdout).toMatch(/0001-jobs\s+\| pending/);

    const up = await runCli(['migrate', 'up'], d.env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('applied 0001-jobs');
    const again = await runCli(['migrate', 'up'], d.env);
    expect(again.stdout).toContain('nothing to apply');

    const after = await runCli(['migrate', 'current'], d.env);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('at head: no migration pending');
    const status = await runCli(['migrate', 'status'], d.env);
    expect(status.stdout).toMatch(/0001-jobs\s+\| applied\s+\| \d{4}-\d\d-\d\dT/);
  });

  it('serve refuses to start with pending migrations unless MIGRATE_ON_START=true, and says which command fixes it', async () => {
    const d = await freshDatabase(false);
    const refused = await runCli(['serve'], { ...d.env, MIGRATE_ON_START: 'false', PORT: '0' }, 30_000);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to start: \d+ migration\(s\) pending \(0001-jobs[^)]*\); run `npx evalops migrate up` first/);
    const server = await spawnServer({ ...d.env, MIGRATE_ON_START: 'true' });
    expect(server.logs.some((l) => l.msg === 'migrations applied')).toBe(true);
    expect(await server.stop()).toBe(0);
  });
});

describe('evalops sql', () => {
  it("runs the runbook's section-B queries verbatim with the right answers, directly and through a running server", async () => {
    const d = await freshDatabase(true);
    await seedRunbookJobs(d);
    const status = await runCli(['sql', RUNBOOK_STATUS_QUERY], d.env);
    const sample = await runCli(['sql', RUNBOOK_FAILED_SAMPLE_QUERY], d.env);
    expect(status.code, status.stderr).toBe(0);
    checkRunbookAnswers(status.stdout, sample.stdout);

    // While a server holds the database (PGlite admits one process) the CLI goes through it.
    const server = await spawnServer(d.env);
    try {
      const viaServer = await runCli(['sql', RUNBOOK_STATUS_QUERY], d.env);
      const sampleViaServer = await runCli(['sql', RUNBOOK_FAILED_SAMPLE_QUERY], d.env);
      expect(viaServer.code, viaServer.stderr).toBe(0);
      checkRunbookAnswers(viaServer.stdout, sampleViaServer.stdout);
      const current = await runCli(['migrate', 'current'], d.env);
      expect(current.code).toBe(0);
      if (TEST_DB === 'pglite') expect(current.stdout).toContain(`through the server at ${server.url}`);
    } finally {
      await server.stop();
    }
  });

  it('refuses writes and a second statement, and prints JSON and CSV on request', async () => {
    const d = await freshDatabase(true);
    await seedRunbookJobs(d);
    const write = await runCli(['sql', 'DELETE FROM jobs'], d.env);
    expect(write.code).toBe(1);
    expect(write.stderr).toContain('refused: DELETE is not a read statement');
    const smuggled = await runCli(['sql', 'SELECT 1; COMMIT; DELETE FROM jobs'], d.env);
    expect(smuggled.code).toBe(1);
    expect(smuggled.stderr).toContain('one statement only');
    const count = await runCli(['sql', '--json', 'SELECT count(*) AS n FROM jobs'], d.env);
    expect(JSON.parse(count.stdout)).toEqual([{ n: 11 }]);
    const csv = await runCli(['sql', '--csv', "SELECT 'a,b' AS x, 2 AS y"], d.env);
    expect(csv.stdout).toBe('x,y\n"a,b",2\n');
    const bad = await runCli(['sql', 'SELECT nope FROM jobs'], d.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/query failed: column "nope" does not exist/);
  });
});

describe('database unreachable', () => {
  it('exits 4 with a sentence when the database cannot be reached', async () => {
    const env = TEST_DB === 'postgres' ? { DATABASE_URL: 'postgresql://postgres:hunter2@127.0.0.1:1/nothing', DATA_DIR: '/tmp' } : undefined;
    if (env) {
      const res = await runCli(['migrate', 'current'], env);
      expect(res.code).toBe(4);
      expect(res.stderr).toMatch(/^evalops: cannot connect to the database: /);
      expect(res.stderr).not.toContain('hunter2');
      return;
    }
    // Embedded: the lock is held by a live process that is not an evalops server.
    const d = await freshDatabase(true);
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(d.dataDir, 'pglite.lock'), `${holder.pid}\n`);
      rmSync(path.join(d.dataDir, 'server.json'), { force: true });
      const res = await runCli(['sql', 'SELECT 1'], d.env);
      expect(res.code).toBe(4);
      expect(res.stderr).toContain(`is held by process ${holder.pid}, and no evalops server answers for it`);
    } finally {
      holder.kill('SIGKILL');
    }
    // Once that process is gone the lock is stale and the CLI takes it.
    await new Promise((r) => holder.once('exit', r));
    const after = await runCli(['sql', 'SELECT 1 AS one'], d.env);
    expect(after.code, after.stderr).toBe(0);
  });
});
