import { existsSync, mkdirSync, renameSync, rmSync, mkdtempSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import { MIGRATIONS } from '../../src/db/migrations/index.ts';
import { migrateUp } from '../../src/db/migrator.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplates: { empty: string; migrated: string };
  }
}

/**
 * Creating a PGlite data directory costs seconds; every test file copies one of two templates
 * (empty, migrated) made once here instead.
 */
async function makeTemplate(target: string, migrated: boolean): Promise<void> {
  if (existsSync(path.join(target, 'PG_VERSION'))) return;
  const staging = mkdtempSync(path.join(path.dirname(target), 'staging-'));
  const pglite = await PGlite.create(staging);
  if (migrated) {
    const db = new Kysely<any>({ dialect: new PGliteDialect(pglite) });
    const result = await migrateUp(db);
    if (result.error) throw result.error;
  }
  await pglite.close();
  try {
    renameSync(staging, target);
  } catch {
    // Another project's setup finished first: keep theirs.
    rmSync(staging, { recursive: true, force: true });
  }
}

export default async function setup(project: TestProject): Promise<void> {
  if (!existsSync(new URL('../../dist/cli/main.js', import.meta.url)) || !existsSync(new URL('../../dist/web/public/index.html', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does it for you)');
  }
  const key = createHash('sha256').update(Object.keys(MIGRATIONS).join(',')).digest('hex').slice(0, 12);
  const root = path.join(os.tmpdir(), 'evalops-test-templates', key);
  mkdirSync(root, { recursive: true });
  const templates = { empty: path.join(root, 'empty'), migrated: path.join(root, 'migrated') };
  await makeTemplate(templates.empty, false);
  await makeTemplate(templates.migrated, true);
  project.provide('pgliteTemplates', templates);
}
