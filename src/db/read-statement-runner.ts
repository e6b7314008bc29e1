import { constants as fsConstants } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { BoundedPool } from './postgres-pool.ts';
import { checkReadStatement } from './read-statement-guard.ts';
import type { QueryResultTable } from './database.ts';
import type { WorkerReply, WorkerRequest } from './pglite-read-worker.ts';

/** The role made by migration 0006; the statement runs as it when the connecting user may SET ROLE to it. */
export const SQL_READER_ROLE = 'evalops_sql_reader';

/** SQL telling whether this session may run as the reader role, and whether the role can read. */
export const READER_ROLE_USABLE_SQL = `SELECT pg_has_role(current_user, oid, 'MEMBER') AND pg_has_role(oid, 'pg_read_all_data', 'MEMBER') AS usable FROM pg_roles WHERE rolname = '${SQL_READER_ROLE}'`;

/** Past --timeout, how long the client waits for PostgreSQL's own statement_timeout to answer. */
const CLIENT_GRACE_MS = 2_000;
/** How long the snapshot of the embedded database may take to open in its worker. */
const SNAPSHOT_OPEN_MS = 120_000;
/** Heap of the worker holding the result's rows and their JSON. */
const WORKER_HEAP_MB = 512;

/** A statement stopped by its timeout; the message names the setting. */
export class StatementTimeoutError extends Error {
  constructor(ms: number) {
    super(`canceling statement due to statement timeout: it ran past --timeout ${ms} ms`);
    this.name = 'StatementTimeoutError';
  }
}

/** Another operator statement is running against this embedded database; one runs at a time. */
export class ReadStatementBusyError extends Error {
  constructor() {
    super('another `evalops sql` statement is running against this embedded database; run this one when it has finished');
    this.name = 'ReadStatementBusyError';
  }
}

/**
 * PostgreSQL: the checked statement in a READ ONLY transaction that is rolled back, with
 * statement_timeout set and, when migration 0006 could make it, as the reader role. The client also
 * gives up (and drops the connection) shortly after the timeout, should the server not answer.
 */
export async function runReadStatementOnPostgres(pool: Pick<BoundedPool, 'connect'>, text: string, timeoutMs: number): Promise<Uint8Array> {
  await checkReadStatement(text);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`);
    const role = await client.query<{ usable: boolean }>(READER_ROLE_USABLE_SQL);
    if (role.rows[0]?.usable) await client.query(`SET LOCAL ROLE ${SQL_READER_ROLE}`);
    // The operator's timeout, not the pool's per-statement bound (DB_UNAVAILABLE_ANSWER_MS), governs this one.
    const query_timeout = Math.floor(timeoutMs) + CLIENT_GRACE_MS + 1000;
    const run = client.query({ text, rowMode: 'array', queryMode: 'extended', query_timeout } as pg.QueryConfig & { queryMode: 'extended' });
    const result = await boundedBy(run, timeoutMs + CLIENT_GRACE_MS, () => {
      broken = new StatementTimeoutError(timeoutMs);
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    });
    const table: QueryResultTable = { columns: result.fields.map((f) => f.name), rows: result.rows as unknown[][] };
    return new TextEncoder().encode(JSON.stringify(table));
  } finally {
    if (!broken) await client.query('ROLLBACK').catch(() => {});
    // A connection given up on is not handed to anyone else.
    client.release(broken);
  }
}

function boundedBy<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new StatementTimeoutError(ms - CLIENT_GRACE_MS));
    }, ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The embedded database runs on the event loop of the process holding it, and ignores
 * statement_timeout, so the operator's statement never runs there. Instead:
 * 1. the data directory is copied while PGlite runs nothing else (`runExclusive`), with asynchronous
 *    file copies, so the event loop keeps serving: the copy is a crash-consistent image (PGlite
 *    writes its files only while a statement runs, WAL before data);
 * 2. a worker thread opens that copy as a PGlite of its own (crash recovery replays the WAL) and runs
 *    the statement read-only, as the reader role;
 * 3. at --timeout the worker is terminated, which stops WebAssembly mid-statement; the copy is
 *    deleted either way.
 * What the statement does to the copy (if anything got past the checks) never reaches the database.
 */
export class PgliteReadStatementRunner {
  private busy = false;

  constructor(
    private readonly pglite: PGlite,
    /** The PGDATA directory PGlite holds. */
    private readonly pgdata: string,
    /** Where snapshots go: beside PGDATA, so a copy-on-write file system can clone instead of copy. */
    private readonly snapshotsDir: string,
  ) {}

  /** Deletes snapshots a crashed process left behind; call while holding the data directory's lock. */
  async removeStaleSnapshots(): Promise<void> {
    await rm(this.snapshotsDir, { recursive: true, force: true });
  }

  async run(text: string, timeoutMs: number): Promise<Uint8Array> {
    await checkReadStatement(text);
    // One at a time: each holds a copy of the database on disk and a PGlite in memory.
    if (this.busy) throw new ReadStatementBusyError();
    this.busy = true;
    let snapshot: string | undefined;
    try {
      await mkdir(this.snapshotsDir, { recursive: true, mode: 0o700 });
      snapshot = await mkdtemp(path.join(this.snapshotsDir, 'sql-'));
      const target = snapshot;
      await this.pglite.runExclusive(() => cp(this.pgdata, target, { recursive: true, mode: fsConstants.COPYFILE_FICLONE }));
      return await runInWorker({ dataDir: snapshot, pgliteUrl: import.meta.resolve('@electric-sql/pglite'), text, role: SQL_READER_ROLE, roleSql: READER_ROLE_USABLE_SQL }, timeoutMs);
    } finally {
      this.busy = false;
      if (snapshot) await rm(snapshot, { recursive: true, force: true }).catch(() => {});
    }
  }
}

function runInWorker(request: WorkerRequest, timeoutMs: number): Promise<Uint8Array> {
  // Built, the worker is a .js beside this file; from source (tests, benchmarks under tsx) a .ts.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const worker = new Worker(new URL(`./pglite-read-worker${ext}`, import.meta.url), {
    workerData: request,
    ...(ext === '.ts' ? { execArgv: [...process.execArgv, '--import', 'tsx'] } : {}),
    // Rows and their JSON live in the worker's heap: a result too large for it ends the worker, not this process.
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  });
  return new Promise<Uint8Array>((resolve, reject) => {
    let timer = setTimeout(() => stop(new Error(`the snapshot of the embedded database did not open within ${SNAPSHOT_OPEN_MS} ms`)), SNAPSHOT_OPEN_MS);
    let settled = false;
    const stop = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate().finally(() => reject(err));
    };
    worker.on('message', (reply: WorkerReply) => {
      if (reply.kind === 'running') {
        // --timeout counts from here: the statement itself, as on PostgreSQL.
        clearTimeout(timer);
        timer = setTimeout(() => stop(new StatementTimeoutError(timeoutMs)), timeoutMs);
      } else if (reply.kind === 'result') {
        settled = true;
        clearTimeout(timer);
        void worker.terminate().finally(() => resolve(reply.json));
      } else {
        stop(new Error(reply.message));
      }
    });
    worker.on('error', (err) =>
      stop((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? new Error(`the result does not fit in ${WORKER_HEAP_MB} MB; narrow it (LIMIT, fewer columns, an aggregate)`) : err),
    );
    worker.on('exit', (code) => stop(new Error(`the statement's worker exited (code ${code}) without an answer`)));
  });
}
