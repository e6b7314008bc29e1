import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../helpers/test-database.ts';
import { runCli, spawnServer, type ServerProcess } from '../helpers/processes.ts';
import { seedRunbookJobs } from '../helpers/runbook-fixtures.ts';

/**
 * `evalops sql` is a read-only window: every attack of issue 12 (finding 2) is refused with its
 * reason, nothing is written anywhere, and a running server keeps answering correctly afterwards.
 */

const scratch = mkdtempSync(path.join(os.tmpdir(), 'evalops-sql-attack-'));
const marker = (name: string) => path.join(scratch, name);

/** Statements an operator's shell must never turn into writes, reads of the host, or signals. */
const ATTACKS: Array<{ sql: string; reason: RegExp; wrote?: string }> = [
  { sql: `COPY jobs TO PROGRAM 'touch ${marker('program')}'`, reason: /COPY is not a read statement/, wrote: marker('program') },
  { sql: `COPY jobs TO '${marker('copy.out')}'`, reason: /COPY is not a read statement/, wrote: marker('copy.out') },
  { sql: "SELECT pg_read_file('/etc/hostname')", reason: /pg_read_file/ },
  { sql: "SELECT ('/etc/hostname'::text).pg_read_file", reason: /pg_read_file/ },
  { sql: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()', reason: /pg_terminate_backend/ },
  { sql: "SELECT query_to_xml('SELECT pg_read_file(''/etc/hostname'')', true, true, '')", reason: /query_to_xml/ },
  { sql: `SELECT lo_export(lo_from_bytea(0, 'x'), '${marker('lo.out')}')`, reason: /lo_export|lo_from_bytea/, wrote: marker('lo.out') },
  { sql: "SELECT set_config('role', 'postgres', true)", reason: /set_config/ },
  { sql: 'SELECT pg_sleep(45)', reason: /pg_sleep/ },
  { sql: 'SELECT pg_advisory_lock(42)', reason: /pg_advisory_lock/ },
  { sql: "SELECT nextval(pg_get_serial_sequence('incidents', 'incident_id'))", reason: /nextval/ },
  { sql: 'SELECT 1; SELECT 2', reason: /one statement only/ },
  { sql: 'SELECT 1; COMMIT; DELETE FROM jobs', reason: /one statement only/ },
  { sql: 'DELETE FROM jobs', reason: /DELETE is not a read statement/ },
  { sql: 'WITH gone AS (DELETE FROM jobs RETURNING job_id) SELECT count(*) FROM gone', reason: /changes data \(DELETE\)/ },
  { sql: 'EXPLAIN ANALYZE DELETE FROM jobs', reason: /DELETE is not a read statement/ },
  { sql: 'SELECT * INTO stolen FROM jobs', reason: /SELECT \.\.\. INTO creates a table/ },
  { sql: 'SELECT * FROM jobs FOR UPDATE', reason: /FOR UPDATE/ },
  { sql: 'SET ROLE postgres', reason: /SET is not a read statement/ },
  { sql: "DO $$ BEGIN PERFORM pg_sleep(45); END $$", reason: /DO is not a read statement/ },
];

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function seeded(): Promise<TestDatabase> {
  const d = await createTestDatabase();
  databases.push(d);
  await seedRunbookJobs(d);
  return d;
}

async function jobCount(d: TestDatabase): Promise<number> {
  const res = await runCli(['sql', '--json', 'SELECT count(*) AS n FROM jobs'], d.env);
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as Array<{ n: number }>)[0]!.n;
}

async function expectRefused(d: TestDatabase, attack: (typeof ATTACKS)[number]): Promise<void> {
  const res = await runCli(['sql', attack.sql], d.env);
  expect(res.code, `${attack.sql} -> ${res.stdout}${res.stderr}`).toBe(1);
  expect(res.stderr, attack.sql).toMatch(attack.reason);
  if (attack.wrote) expect(existsSync(attack.wrote), `${attack.sql} wrote ${attack.wrote}`).toBe(false);
}

describe('evalops sql on the database directly', () => {
  let d: TestDatabase;
  beforeAll(async () => {
    d = await seeded();
  });

  it.each(ATTACKS)('refuses $sql, naming the reason, and writes nothing', async (attack) => {
    await expectRefused(d, attack);
  });

  it('still runs the reads an operator needs: WITH, TABLE, VALUES, EXPLAIN (ANALYZE), SHOW', async () => {
    for (const sql of [
      "WITH s AS (SELECT status FROM jobs) SELECT status, count(*) FROM s GROUP BY status",
      'TABLE evalops_migrations',
      'VALUES (1, 2)',
      'EXPLAIN ANALYZE SELECT count(*) FROM jobs',
      'SHOW server_version',
    ]) {
      const res = await runCli(['sql', sql], d.env);
      expect(res.code, `${sql}: ${res.stderr}`).toBe(0);
    }
    expect(await jobCount(d)).toBe(11);
    // Six CLI runs; on the embedded database each opens it and a snapshot of it.
  }, 240_000);

  it('runs as the read-only role made by migration 0006, not as the connecting user', async () => {
    const res = await runCli(['sql', '--json', 'SELECT current_user AS who'], d.env);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual([{ who: 'evalops_sql_reader' }]);
  });

  it('holds --timeout on a statement that would run for hours', async () => {
    const started = Date.now();
    const res = await runCli(['sql', '--timeout', '1000', 'SELECT count(*) FROM generate_series(1, 10000000000)'], d.env, 60_000);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/statement timeout|--timeout/);
    // Generous: start-up and the snapshot on a loaded machine, but nowhere near the statement's hours.
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('evalops sql while a server runs (through it, on the embedded database)', () => {
  let d: TestDatabase;
  let server: ServerProcess;
  let key: string;

  const api = async (method: string, route: string, body?: unknown, auth = true) => {
    const res = await fetch(`${server.url}${route}`, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as any };
  };

  /** A valid key authenticates, a job is accepted, and the database's migrations are current. */
  async function expectServerAnswersCorrectly(after: string): Promise<void> {
    expect((await api('GET', '/v1/jobs?limit=1')).status, `key refused after ${after}`).toBe(200);
    const submit = await api('POST', '/v1/jobs', { type: 'noop' });
    expect(submit.status, `submit after ${after}: ${JSON.stringify(submit.body)}`).toBe(202);
    const health = await api('GET', '/health/detailed', undefined, false);
    expect(health.body.components.database.status, `database after ${after}: ${JSON.stringify(health.body.components.database)}`).toBe('healthy');
    expect(health.body.components.database.details.migrations.pending).toEqual([]);
  }

  beforeAll(async () => {
    d = await seeded();
    server = await spawnServer(d.env);
    const created = await api('POST', '/v1/admin/api-keys', { name: 'sql-test-admin', scopes: ['admin'] }, false);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    key = created.body.key;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses every attack with its reason, and the server keeps answering correctly after each', async () => {
    // The CLI refuses before it connects; the server's own route must refuse as well.
    const local = TEST_DB === 'pglite' ? (JSON.parse(readFileSync(path.join(d.dataDir, 'server.json'), 'utf8')) as { token: string }) : undefined;
    for (const attack of ATTACKS) {
      await expectRefused(d, attack);
      if (local) {
        const res = await fetch(`${server.url}/local/sql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${local.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ query: attack.sql, timeout_ms: 5000 }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(res.status, `${attack.sql}: ${JSON.stringify(body)}`).toBe(400);
        expect(body.error.message).toMatch(attack.reason);
        if (attack.wrote) expect(existsSync(attack.wrote)).toBe(false);
      }
      await expectServerAnswersCorrectly(attack.sql);
    }
    // Twenty CLI runs and their checks, on a shared 2-core machine.
  }, 300_000);

  it('keeps /health answering within 1 s while the slowest allowed statement runs', async () => {
    const slow = runCli(['sql', '--timeout', '6000', 'SELECT count(*) FROM generate_series(1, 10000000000)'], d.env, 60_000);
    let done = false;
    void slow.finally(() => {
      done = true;
    });
    const latencies: number[] = [];
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await slow;
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/statement timeout|--timeout/);
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies), `slowest /health: ${Math.round(Math.max(...latencies))} ms`).toBeLessThan(1000);
    await expectServerAnswersCorrectly('the slow statement');
  });

  it('answers reads through the server as the read-only role', async () => {
    const res = await runCli(['sql', '--json', 'SELECT current_user AS who, count(*) AS n FROM jobs'], d.env);
    expect(res.code, res.stderr).toBe(0);
    const [row] = JSON.parse(res.stdout) as Array<{ who: string; n: number }>;
    expect(row!.who).toBe('evalops_sql_reader');
    expect(row!.n).toBeGreaterThanOrEqual(11);
    if (TEST_DB === 'pglite') expect(res.stderr).toBe('');
  });
});
