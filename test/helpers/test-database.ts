import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase } from '../../src/db/database.ts';
import { migrateUp } from '../../src/db/migrator.ts';

/** Which backend this test run targets (vitest projects set it). */
export const TEST_DB: 'pglite' | 'postgres' = process.env.EVALOPS_TEST_DB === 'postgres' ? 'postgres' : 'pglite';

export const PG_ADMIN_URL = process.env.EVALOPS_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** Environment for a server or CLI process using this database (DATA_DIR always set). */
  env: Record<string, string>;
  dataDir: string;
  databaseUrl: string | undefined;
  /** Database name on PostgreSQL, for psql. */
  pgDatabase: string | undefined;
  cleanup(): Promise<void>;
}

/** A database of this test file's own: a fresh PostgreSQL database, or a PGlite directory from a template. */
export async function createTestDatabase(options: { migrated?: boolean; backend?: 'pglite' | 'postgres' } = {}): Promise<TestDatabase> {
  const migrated = options.migrated ?? true;
  const backend = options.backend ?? TEST_DB;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'evalops-test-'));
  if (backend === 'pglite') {
    const templates = inject('pgliteTemplates');
    cpSync(migrated ? templates.migrated : templates.empty, path.join(dataDir, 'pglite'), { recursive: true });
    return {
      env: { DATA_DIR: dataDir },
      dataDir,
      databaseUrl: undefined,
      pgDatabase: undefined,
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `evalops_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  if (migrated) {
    const handle = await openDatabase({ databaseUrl, dataDir, poolSize: 2 });
    const result = await migrateUp(handle.db);
    await handle.close();
    if (result.error) throw result.error;
  }
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: databaseUrl },
    dataDir,
    databaseUrl,
    pgDatabase: name,
    async cleanup() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
