import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Logger } from 'pino';
import { redactUrl } from '../config/config.ts';
import { acquireDataDirLock } from './data-dir-lock.ts';
import { createBoundedPool, destroySocket, type PostgresWaits, postgresWaits, probe } from './postgres-pool.ts';
import { PgliteReadStatementRunner, runReadStatementOnPostgres } from './read-statement-runner.ts';
import type { Database } from './schema.ts';

/** A connected database: Kysely plus what Kysely does not cover (LISTEN, probes, closing). */
export interface DatabaseHandle {
  readonly kind: 'postgres' | 'pglite';
  readonly db: Kysely<Database>;
  /** Where it is, with any password masked. */
  readonly location: string;
  /** Calls `onNotify` for each NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs one statement in a READ ONLY transaction that is rolled back, through the extended
   * protocol so a second statement (`; COMMIT; DROP ...`) cannot slip past the read-only guard.
   */
  readOnlyQuery(text: string, timeoutMs: number): Promise<QueryResultTable>;
  /**
   * Runs an operator's statement (`evalops sql`): refused unless it is one read statement
   * (read-statement-guard.ts), run as the least-privileged role, within `timeoutMs`, and never on
   * this process's event loop (read-statement-runner.ts). Resolves to the result table
   * (`{columns, rows}`) as JSON, serialized where the statement ran: a large result costs the
   * caller's event loop no serialization.
   */
  operatorQuery(text: string, timeoutMs: number): Promise<Uint8Array>;
  /** Round-trips `SELECT 1` or rejects within `timeoutMs`, without tying up a pooled connection. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A query's column names and rows, in order. */
export interface QueryResultTable {
  columns: string[];
  rows: unknown[][];
}

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize: number;
  /**
   * DB_UNAVAILABLE_ANSWER_MS for processes that answer requests or run jobs: every statement,
   * connect and pool wait is bounded by it. Unset (CLI commands): only connecting is bounded.
   */
  answerMs?: number;
  logger?: Logger;
}

/** How often a LISTEN connection checks it still hears the database (when waits are bounded). */
const HEARTBEAT_MS = 5000;

/** Counts and bigint ids come back as numbers from both drivers (they fit well under 2^53). */
const parseInt8 = (value: string) => Number(value);

/** Opens PostgreSQL when a URL is given, else the embedded PGlite under `dataDir/pglite`. */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPglite(options.dataDir);
}

/** Rejects with `<what> did not answer within <ms> ms` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} did not answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function openPostgres(url: string, options: DatabaseOptions): DatabaseHandle {
  const types = { getTypeParser: (oid: number, format?: string) => (oid === 20 ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) };
  const waits = options.answerMs === undefined ? undefined : postgresWaits(options.answerMs);
  const bounded = createBoundedPool({ url, max: options.poolSize, types: types as pg.CustomTypesConfig, waits, logger: options.logger });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: bounded }) });
  const listeners: Array<() => Promise<void>> = [];

  return {
    kind: 'postgres',
    db,
    location: redactUrl(url),
    async listen(channel, onNotify) {
      const sub = new NotificationSubscriber(url, channel, onNotify, waits, options.logger);
      await sub.start();
      const stop = () => sub.stop();
      listeners.push(stop);
      return stop;
    },
    async readOnlyQuery(text, timeoutMs) {
      const client = await bounded.connect();
      try {
        await client.query('BEGIN READ ONLY');
        await client.query(`SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`);
        // The caller's timeout, not the pool's: the server cancels first, the client stops reading a second later.
        const query_timeout = Math.floor(timeoutMs) + 1000;
        const result = await client.query({ text, rowMode: 'array', queryMode: 'extended', query_timeout } as pg.QueryConfig & { queryMode: 'extended' });
        return { columns: result.fields.map((f) => f.name), rows: result.rows as unknown[][] };
      } finally {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
      }
    },
    operatorQuery: (text, timeoutMs) => runReadStatementOnPostgres(bounded, text, timeoutMs),
    ping: (timeoutMs) => probe(url, timeoutMs),
    async close() {
      await Promise.allSettled(listeners.map((stop) => stop()));
      await db.destroy();
      // Kysely ends the pool only if it used it; readOnlyQuery may have been its only user.
      await bounded.end();
    },
  };
}

/**
 * A dedicated connection holding LISTEN; reconnects with backoff when the database goes away,
 * so wake-ups resume by themselves once it is back (callers also poll, so none is missed).
 * A silent partition sends no error: a bounded heartbeat finds it and starts the reconnecting.
 */
class NotificationSubscriber {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private delayMs = 250;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: (payload: string) => void,
    private readonly waits: PostgresWaits | undefined,
    private readonly logger?: Logger,
  ) {}

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message, channel: this.channel }, 'LISTEN connection failed; retrying');
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.waits?.connectMs ?? 5000,
      keepAlive: true,
      ...(this.waits ? { query_timeout: this.waits.queryMs } : {}),
    });
    client.on('notification', (msg) => {
      if (msg.channel === this.channel) this.onNotify(msg.payload ?? '');
    });
    client.on('error', () => this.drop(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replace(/"/g, '""')}"`);
    } catch (err) {
      // A half-open connection (the LISTEN timed out) is closed here, not left to the kernel.
      this.drop(client);
      throw err;
    }
    if (this.stopped) {
      await client.end();
      return;
    }
    this.client = client;
    this.delayMs = 250;
    this.armHeartbeat(client);
  }

  /** Every few seconds, a statement with a bounded answer: none means the connection is gone. */
  private armHeartbeat(client: pg.Client): void {
    if (!this.waits) return;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      client.query('SELECT 1').catch(() => this.drop(client));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      clearInterval(this.heartbeat);
    }
    destroySocket(client);
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch(() => this.scheduleReconnect());
    }, this.delayMs);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, 5000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // A silent server never acknowledges the goodbye: after one bounded wait the socket is dropped.
    const timer = setTimeout(() => destroySocket(client), this.waits?.connectMs ?? 5000);
    await client.end().catch(() => {});
    clearTimeout(timer);
  }
}

async function openPglite(dataDir: string): Promise<DatabaseHandle> {
  const release = acquireDataDirLock(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(path.join(dataDir, 'pglite'), { parsers: { 20: parseInt8 } });
  } catch (err) {
    release();
    throw err;
  }
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  const operator = new PgliteReadStatementRunner(pglite, path.join(dataDir, 'pglite'), path.join(dataDir, 'sql-snapshots'));
  await operator.removeStaleSnapshots().catch(() => {});
  return {
    kind: 'pglite',
    db,
    location: `pglite:${path.join(dataDir, 'pglite')}`,
    listen: (channel, onNotify) => pglite.listen(channel, onNotify).then((unsub) => () => unsub()),
    async readOnlyQuery(text, timeoutMs) {
      return pglite.transaction(async (tx) => {
        await tx.exec(`SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`);
        const result = await tx.query<unknown[]>(text, [], { rowMode: 'array' });
        await tx.rollback();
        return { columns: result.fields.map((f) => f.name), rows: result.rows };
      });
    },
    operatorQuery: (text, timeoutMs) => operator.run(text, timeoutMs),
    async ping(timeoutMs) {
      await withTimeout(pglite.query('SELECT 1'), timeoutMs, 'the embedded database');
    },
    async close() {
      // PGlite's WebAssembly runtime writes process.exitCode when it shuts down; keep the caller's.
      const exitCode = process.exitCode;
      try {
        await db.destroy();
        if (!pglite.closed) await pglite.close();
      } finally {
        process.exitCode = exitCode;
        release();
      }
    },
  };
}
