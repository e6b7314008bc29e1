import pg from 'pg';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';

/**
 * How long each wait on PostgreSQL may last, derived from DB_UNAVAILABLE_ANSWER_MS so that a
 * request hitting an outage is answered within it: a statement the server gives up on itself
 * (statement_timeout) comes back before the client stops reading (query_timeout), so a client read
 * timeout means the server cannot be heard at all, not that a statement was slow.
 */
export interface PostgresWaits {
  /** Opening a connection, and waiting for a pooled one. */
  connectMs: number;
  /** The client stops reading a statement's answer after this (pg's query_timeout). */
  queryMs: number;
  /** The server cancels a statement after this (statement_timeout). */
  statementMs: number;
  /** The server ends a session left idle inside a transaction, releasing its row locks. */
  idleInTransactionMs: number;
}

/** The waits for a process that answers requests within `answerMs`. */
export function postgresWaits(answerMs: number): PostgresWaits {
  // Room for the answer to be written after the wait gave up.
  const wait = answerMs - Math.min(250, Math.floor(answerMs / 4));
  return {
    connectMs: wait,
    queryMs: wait,
    statementMs: wait - Math.min(250, Math.floor(wait / 4)),
    // Five answers' worth: no statement of the service keeps a transaction idle anywhere near it.
    idleInTransactionMs: Math.max(5 * answerMs, 5000),
  };
}

/** Without a bound (CLI commands, migrations): only connecting is bounded, as before. */
const UNBOUNDED_CONNECT_MS = 5000;
/** Pause between two reachability probes while the database is known unreachable. */
const PROBE_PAUSE_MS = 200;

export interface PostgresPoolOptions {
  url: string;
  max: number;
  types: pg.CustomTypesConfig;
  /** Undefined: statements are not bounded (CLI commands, which may run long statements on purpose). */
  waits?: PostgresWaits;
  logger?: Logger;
}

/**
 * What Kysely's PostgresDialect asks of a pool: here a pg pool whose every wait is bounded, and
 * which fails fast while the database is known to be unreachable instead of queueing work behind
 * connections that will never answer.
 */
export interface BoundedPool {
  connect(): Promise<pg.PoolClient>;
  end(): Promise<void>;
}

/** Opens a bounded pool on `url` (see BoundedPool). */
export function createBoundedPool(options: PostgresPoolOptions): BoundedPool {
  const { waits, logger } = options;
  const connectMs = waits?.connectMs ?? UNBOUNDED_CONNECT_MS;
  // Failing fast serves processes that answer requests; a one-shot CLI command just reports its error.
  const reachability = new Reachability(connectMs, options.url, waits !== undefined, logger);

  // Each connection reports what it learns about reachability: a connect that fails, a statement
  // whose answer never came.
  class BoundedClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error) => void): void;
    override connect(callback?: (err: Error) => void): Promise<pg.Client> | void {
      if (callback) {
        super.connect((err: Error) => {
          if (err && unheard(err)) reachability.lost(err);
          callback(err);
        });
        return;
      }
      return super.connect().catch((err: Error) => {
        if (unheard(err)) reachability.lost(err);
        throw err;
      });
    }

    override query(...args: any[]): any {
      const last = args.length - 1;
      if (typeof args[last] === 'function') {
        const callback = args[last] as (err: Error | null, res?: unknown) => void;
        args[last] = (err: Error | null, res?: unknown) => {
          if (err) this.noteFailure(err);
          callback(err, res);
        };
      }
      const result = (super.query as (...a: unknown[]) => unknown).apply(this, args);
      // Registered before the caller's own handlers, so the connection is unusable before it is released.
      if (result instanceof Promise) result.catch((err: Error) => this.noteFailure(err));
      return result;
    }

    private noteFailure(err: Error): void {
      if (err.message !== 'Query read timeout') return;
      // The statement may still be on the wire or running: the connection's state is unknown, so it
      // is destroyed (never reused) rather than released to the next caller.
      err.message = `the database did not answer within ${waits?.queryMs} ms (query_timeout)`;
      (err as Error & { code?: string }).code = 'ETIMEDOUT';
      (this as unknown as { _queryable: boolean })._queryable = false;
      destroySocket(this);
      reachability.lost(err);
    }
  }

  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max,
    connectionTimeoutMillis: connectMs,
    // A connection whose peer vanished is found by the kernel instead of lingering forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(waits ? { query_timeout: waits.queryMs, statement_timeout: waits.statementMs, idle_in_transaction_session_timeout: waits.idleInTransactionMs } : {}),
    types: options.types,
    Client: BoundedClient as unknown as typeof pg.Client,
  });
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger?.warn({ err: err.message }, 'idle database connection lost'));
  // A checked-out client has no pool listener; a socket dying between its queries would otherwise be
  // an uncaught exception. The pool discards the broken client when it is released.
  const idle = new Set<pg.PoolClient>();
  const all = new Set<pg.PoolClient>();
  pool.on('connect', (client) => {
    client.on('error', () => {});
    idle.add(client);
    all.add(client);
  });
  pool.on('acquire', (client) => idle.delete(client));
  pool.on('release', (_err, client) => idle.add(client));
  pool.on('remove', (client) => {
    idle.delete(client);
    all.delete(client);
  });
  // Idle connections opened before the outage would each hang their next user for a whole wait.
  reachability.onLost = () => {
    for (const client of idle) destroySocket(client);
  };

  return {
    async connect() {
      reachability.check();
      return reachability.race(pool.connect());
    },
    async end() {
      reachability.close();
      if (pool.ended) return;
      // A silent server never acknowledges the goodbye: after one bounded wait the sockets are dropped.
      const timer = setTimeout(() => {
        for (const client of all) destroySocket(client);
      }, connectMs);
      try {
        await pool.end();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * A connect that failed without the server answering (refused, reset, timed out) or because it is
 * shutting down or starting; a refusal the server states (bad password, no such database) is an
 * answer, and probing again would not change it.
 */
function unheard(err: Error): boolean {
  if (!(err instanceof pg.DatabaseError)) return true;
  return err.code === '57P01' || err.code === '57P02' || err.code === '57P03';
}

/** Drops a connection's socket at once, without the goodbye a silent server would never answer. */
export function destroySocket(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Whether PostgreSQL can be heard. Once a connection attempt or a statement times out, new work is
 * refused at once (no queue of requests behind dead connections), the waiters are told, and one
 * probe at a time (a fresh connection, bounded) finds when it answers again.
 */
class Reachability {
  reason: string | undefined;
  onLost: () => void = () => {};
  private readonly waiters = new Set<(err: Error) => void>();
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(
    private readonly probeMs: number,
    private readonly url: string,
    private readonly enabled: boolean,
    private readonly logger?: Logger,
  ) {}

  /** Throws UNAVAILABLE at once while the database is known unreachable. */
  check(): void {
    if (this.reason !== undefined) throw this.refusal();
  }

  /** Settles with `acquiring`, or rejects as soon as the database is found unreachable meanwhile. */
  race(acquiring: Promise<pg.PoolClient>): Promise<pg.PoolClient> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const abandon = (err: Error) => {
        settled = true;
        reject(err);
      };
      this.waiters.add(abandon);
      acquiring.then(
        (client) => {
          this.waiters.delete(abandon);
          if (settled) client.release();
          else resolve(client);
        },
        (err) => {
          this.waiters.delete(abandon);
          if (!settled) reject(err);
        },
      );
    });
  }

  /** A connection-level failure: the database is unreachable until a probe says otherwise. */
  lost(err: Error): void {
    if (this.closed || !this.enabled) return;
    if (this.reason === undefined) {
      this.reason = err.message;
      this.logger?.warn({ err: err.message }, 'the database is unreachable; refusing database work until it answers again');
      const refusal = this.refusal();
      for (const abandon of this.waiters) abandon(refusal);
      this.waiters.clear();
      this.onLost();
    }
    this.scheduleProbe(0);
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
  }

  private refusal(): AppError {
    return new AppError('UNAVAILABLE', `the database is unreachable (${this.reason}); retry shortly`);
  }

  private scheduleProbe(delayMs: number): void {
    if (this.closed || this.probing || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.probing = true;
      probe(this.url, this.probeMs)
        .then(
          () => {
            if (this.reason !== undefined) this.logger?.info('the database answers again');
            this.reason = undefined;
          },
          (err: Error) => {
            this.reason = err.message;
          },
        )
        .finally(() => {
          this.probing = false;
          if (this.reason !== undefined) this.scheduleProbe(PROBE_PAUSE_MS);
        });
    }, delayMs);
    this.probeTimer.unref();
  }
}

/** Round-trips `SELECT 1` on a fresh connection (never a pooled one), or rejects within `timeoutMs`. */
export async function probe(url: string, timeoutMs: number): Promise<void> {
  // The driver's own timeouts are later than the race below, whose message names the bound.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs + 1000, query_timeout: timeoutMs + 1000 });
  // A connection dropped after the probe gave up must not become an uncaught exception.
  client.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  const run = (async () => {
    await client.connect();
    await client.query('SELECT 1');
  })();
  run.catch(() => {});
  try {
    await Promise.race([
      run,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A hung server: drop the socket so nothing lingers.
          destroySocket(client);
          reject(new Error(`the database did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    destroySocket(client);
    client.end().catch(() => {});
  }
}
