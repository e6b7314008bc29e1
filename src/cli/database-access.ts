import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { DataDirLockedError, lockHolder } from '../db/data-dir-lock.ts';
import { openDatabase, type QueryResultTable } from '../db/database.ts';
import { type MigrateUpResult, type MigrationStatus, migrateUp, migrationStatus } from '../db/migrator.ts';
import { type ServerInfo, serverInfoPath } from '../http/server.ts';
import { CliError, EXIT } from './exit-codes.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

/** What CLI commands do with the database, wherever it is. */
export interface DatabaseAccess {
  /** `direct`, or `server` when a running evalops server holds the embedded database. */
  readonly via: 'direct' | 'server';
  readonly location: string;
  /** The operator's statement (`evalops sql`): checked, least-privileged, bounded, off the server's event loop. */
  query(text: string, timeoutMs: number): Promise<QueryResultTable>;
  /** One of evalops' own read queries (doctor, slo, incident): read-only, run where the database is. */
  read(text: string, timeoutMs: number): Promise<QueryResultTable>;
  migrationStatus(): Promise<MigrationStatus>;
  migrateUp(): Promise<MigrateUpResult>;
  /** Direct access only: the database itself (apikey and limits commands use it). */
  readonly db?: Kysely<Database>;
  /** Through the server only: one of its token-authenticated /local routes. */
  callLocal?<T>(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Opens the configured database directly, or, when a running server holds the embedded one
 * (PGlite admits one process), goes through that server with the token it left in DATA_DIR.
 */
export async function openDatabaseAccess(config: Config): Promise<DatabaseAccess> {
  try {
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
    try {
      await database.ping(10_000);
    } catch (err) {
      await database.close().catch(() => {});
      throw err;
    }
    return {
      via: 'direct',
      location: database.location,
      query: async (text, timeoutMs) => JSON.parse(Buffer.from(await database.operatorQuery(text, timeoutMs)).toString('utf8')) as QueryResultTable,
      read: (text, timeoutMs) => database.readOnlyQuery(text, timeoutMs),
      migrationStatus: () => migrationStatus(database.db),
      migrateUp: () => migrateUp(database.db),
      db: database.db,
      close: () => database.close(),
    };
  } catch (err) {
    if (err instanceof DataDirLockedError) return viaServer(config, err);
    throw new CliError(`cannot connect to the database: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
  }
}

async function viaServer(config: Config, locked: DataDirLockedError): Promise<DatabaseAccess> {
  const file = serverInfoPath(config.dataDir);
  const noServer = (why: string) =>
    new CliError(`the embedded database in ${config.dataDir} is held by process ${locked.pid}, and ${why}; stop that process or run this command against its server`, EXIT.CANNOT_CONNECT);
  if (!existsSync(file)) throw noServer(`no evalops server answers for it (${file} is missing)`);
  const info = JSON.parse(readFileSync(file, 'utf8')) as ServerInfo;
  if (info.pid !== lockHolder(config.dataDir)) throw noServer(`${file} belongs to another process (${info.pid})`);

  const call = async <T>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}, waitMs = 120_000): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${info.url}${route}`, {
        method,
        headers: { ...headers, authorization: `Bearer ${info.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(waitMs),
      });
    } catch (err) {
      throw noServer(`its server at ${info.url} does not answer (${(err as Error).message})`);
    }
    const payload = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    if (!res.ok) throw new CliError(payload.error?.message ?? `the server answered ${res.status}`, res.status >= 500 ? EXIT.CANNOT_CONNECT : EXIT.FAILURE);
    return payload as T;
  };

  await call('GET', '/local/migrations');
  return {
    via: 'server',
    location: `pglite:${config.dataDir} (through the server at ${info.url}, pid ${info.pid})`,
    // The server snapshots the database and opens the copy before the statement's own timeout starts.
    query: (text, timeoutMs) => call('POST', '/local/sql', { query: text, timeout_ms: timeoutMs }, {}, timeoutMs + 180_000),
    read: (text, timeoutMs) => call('POST', '/local/read', { query: text, timeout_ms: timeoutMs }, {}, timeoutMs + 120_000),
    async migrationStatus() {
      const s = await call<MigrationStatus & { migrations: Array<{ executedAt: string | null }> }>('GET', '/local/migrations');
      return { ...s, migrations: s.migrations.map((m) => ({ ...m, executedAt: m.executedAt ? new Date(m.executedAt) : null })) } as MigrationStatus;
    },
    async migrateUp() {
      const r = await call<{ applied: string[]; error: string | null; failed: string | null }>('POST', '/local/migrations/up');
      return { applied: r.applied, ...(r.error ? { error: new Error(r.error) } : {}), ...(r.failed ? { failed: r.failed } : {}) };
    },
    callLocal: call,
    close: async () => {},
  };
}
