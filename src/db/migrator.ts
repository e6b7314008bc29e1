import { type Kysely, type MigrationResult, Migrator } from 'kysely';
import { MIGRATIONS } from './migrations/index.ts';

export interface MigrationState {
  name: string;
  applied: boolean;
  executedAt: Date | null;
}

/** Where the database stands against the migrations this build carries. */
export interface MigrationStatus {
  migrations: MigrationState[];
  /** Newest applied migration, or null for an empty database. */
  current: string | null;
  head: string;
  pending: string[];
  /** Applied migrations this build does not know: the database is newer than the code. */
  unknown: string[];
}

const provider = { getMigrations: async () => MIGRATIONS };

function migrator(db: Kysely<any>): Migrator {
  // Kysely's Postgres adapter takes an advisory lock around migrations: several processes may start at once.
  return new Migrator({ db, provider, migrationTableName: 'evalops_migrations', migrationLockTableName: 'evalops_migrations_lock' });
}

/** Reads the applied migrations; never changes anything. */
export async function migrationStatus(db: Kysely<any>): Promise<MigrationStatus> {
  const names = Object.keys(MIGRATIONS).sort();
  const applied = new Map<string, Date>();
  const exists = await db
    .selectFrom('information_schema.tables' as any)
    .select('table_name' as any)
    .where('table_name' as any, '=', 'evalops_migrations')
    .where('table_schema' as any, '=', db.fn('current_schema' as any, []) as any)
    .executeTakeFirst();
  if (exists) {
    const rows = (await db.selectFrom('evalops_migrations' as any).select(['name', 'timestamp'] as any).execute()) as Array<{ name: string; timestamp: string | Date }>;
    for (const row of rows) applied.set(row.name, new Date(row.timestamp));
  }
  const migrations = names.map((name) => ({ name, applied: applied.has(name), executedAt: applied.get(name) ?? null }));
  const appliedNames = [...applied.keys()].sort();
  return {
    migrations,
    current: appliedNames.at(-1) ?? null,
    head: names.at(-1)!,
    pending: migrations.filter((m) => !m.applied).map((m) => m.name),
    unknown: appliedNames.filter((n) => !(n in MIGRATIONS)),
  };
}

export interface MigrateUpResult {
  applied: string[];
  error?: Error;
  failed?: string;
}

/** Applies every pending migration; reports rather than throws. */
export async function migrateUp(db: Kysely<any>): Promise<MigrateUpResult> {
  const { error, results } = await migrator(db).migrateToLatest();
  const ok = (results ?? []).filter((r: MigrationResult) => r.status === 'Success').map((r) => r.migrationName);
  const failed = (results ?? []).find((r: MigrationResult) => r.status === 'Error')?.migrationName;
  return error ? { applied: ok, error: error instanceof Error ? error : new Error(String(error)), ...(failed ? { failed } : {}) } : { applied: ok };
}
