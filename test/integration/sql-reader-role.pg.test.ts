import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqlReaderRole } from '../../src/db/migrations/0006-sql-reader-role.ts';
import { openDatabase } from '../../src/db/database.ts';
import { migrateUp } from '../../src/db/migrator.ts';
import { PG_ADMIN_URL } from '../helpers/test-database.ts';
import { runCli } from '../helpers/processes.ts';

/** Migration 0006 on PostgreSQL: a cluster-wide role, made safely by concurrent migrations, optional. */

const suffix = randomBytes(4).toString('hex');
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function urlOf(database: string, user?: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  if (user) url.username = user;
  return url.toString();
}

async function freshDatabase(owner?: string): Promise<string> {
  const name = `evalops_t_role_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}${owner ? ` OWNER ${owner}` : ''}`));
  cleanups.push(() => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}));
  return name;
}

describe('the evalops_sql_reader role (migration 0006)', () => {
  it('is created once when several databases of one server migrate at the same moment', async () => {
    const role = `evalops_t_reader_${suffix}`;
    cleanups.push(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)).then(() => {}));
    const names = await Promise.all([1, 2, 3, 4].map(() => freshDatabase()));
    const dbs = names.map((n) => new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: urlOf(n), max: 1 }) }) }));
    try {
      // Each in a transaction held open until all have run, as the migrator does: the later ones
      // wait on the first one's uncommitted role, then find it there.
      await Promise.all(dbs.map((db) => db.transaction().execute((trx) => createSqlReaderRole(trx, role))));
      const rows = await admin((c) =>
        c.query(`SELECT pg_has_role('postgres', oid, 'MEMBER') AS granted, pg_has_role(oid, 'pg_read_all_data', 'MEMBER') AS reads, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1`, [role]),
      );
      expect(rows.rows).toEqual([{ granted: true, reads: true, rolcanlogin: false, rolsuper: false }]);
      // Run again: nothing to do, no error.
      await createSqlReaderRole(dbs[0]!, role);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
  });

  it('is optional: a user without CREATEROLE migrates, and evalops sql runs as that user behind its refusals', async () => {
    const user = `evalops_t_plain_${suffix}`;
    await admin((c) => c.query(`CREATE ROLE ${user} LOGIN NOCREATEROLE NOSUPERUSER`));
    cleanups.push(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${user}`)).then(() => {}));
    const name = await freshDatabase(user);
    const url = urlOf(name, user);
    const handle = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 });
    try {
      const result = await migrateUp(handle.db);
      expect(result.error?.message).toBeUndefined();
      expect(result.applied).toContain('0006-sql-reader-role');
    } finally {
      await handle.close();
    }
    const env = { DATABASE_URL: url, DATA_DIR: '/tmp' };
    const who = await runCli(['sql', '--json', 'SELECT current_user AS who'], env);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toEqual([{ who: user }]);
    const refused = await runCli(['sql', "SELECT pg_read_file('/etc/hostname')"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused: pg_read_file\(\) reads or writes files/);
  });
});
