import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Logger } from './logger.ts';
import type { MinuteCount, RequestCounter } from './request-counter.ts';

/**
 * Writes a process's request counts to `request_counts` every SLI_FLUSH_MS, and once more at
 * shutdown. A write that fails (the database is down: exactly when the 5xx answers matter) puts the
 * counts back in memory, to be written when the database answers again.
 */

/** Rows per INSERT: well under PostgreSQL's 65,535 bind parameters (7 per row). */
const ROWS_PER_STATEMENT = 1000;

/** How often old rows are deleted. */
const PRUNE_EVERY_MS = 3_600_000;

/**
 * Adds `counts` to the rows of `instanceId`. Each process writes only its own rows, and adds rather
 * than overwrites, so flushing a minute in several parts counts every request exactly once.
 */
export async function writeRequestCounts(db: Kysely<Database>, instanceId: string, counts: readonly MinuteCount[]): Promise<void> {
  for (let start = 0; start < counts.length; start += ROWS_PER_STATEMENT) {
    const batch = counts.slice(start, start + ROWS_PER_STATEMENT);
    const values = sql.join(
      batch.map(
        (c) =>
          sql`(${c.minute.toISOString()}::timestamptz, ${instanceId}, ${c.routeClass}, ${c.statusCode}::smallint, ${c.requests}::integer, ${c.durationMsSum}::float8, ${`{${c.buckets.join(',')}}`}::integer[])`,
      ),
    );
    await sql`
      INSERT INTO request_counts AS rc (minute, instance_id, route_class, status_code, requests, duration_ms_sum, duration_buckets)
      VALUES ${values}
      ON CONFLICT (minute, instance_id, route_class, status_code) DO UPDATE SET
        requests = rc.requests + excluded.requests,
        duration_ms_sum = rc.duration_ms_sum + excluded.duration_ms_sum,
        duration_buckets = ARRAY(
          SELECT coalesce(a, 0) + coalesce(b, 0)
          FROM unnest(rc.duration_buckets, excluded.duration_buckets) WITH ORDINALITY AS t(a, b, i)
          ORDER BY i),
        updated_at = now()`.execute(db);
  }
}

/** Deletes rows older than `retentionSeconds`. */
export async function pruneRequestCounts(db: Kysely<Database>, retentionSeconds: number): Promise<void> {
  await sql`DELETE FROM request_counts WHERE minute < now() - ${Math.floor(retentionSeconds)} * INTERVAL '1 second'`.execute(db);
}

export interface RequestCountFlusherOptions {
  db: Kysely<Database>;
  counter: RequestCounter;
  intervalMs: number;
  /** Rows older than this are deleted about once an hour: the longest SLO window plus a day. */
  retentionSeconds: number;
  logger: Logger;
}

/** The periodic writer; `stop` writes what is left. */
export class RequestCountFlusher {
  readonly #o: RequestCountFlusherOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #failing = false;
  #lastPrune = 0;

  constructor(options: RequestCountFlusherOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Writes the pending counts now (one write at a time; a call during a write waits for it and writes again). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
    this.#running = this.#flushOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #flushOnce(): Promise<void> {
    const { db, counter, logger } = this.#o;
    const counts = counter.drain();
    if (counts.length > 0) {
      try {
        await writeRequestCounts(db, counter.instanceId, counts);
        if (this.#failing) logger.info({ cells: counts.length }, 'request counts written again after the database came back');
        this.#failing = false;
      } catch (err) {
        counter.restore(counts);
        // Once per outage: the database being down is reported by /health/detailed.
        if (!this.#failing) logger.warn({ err: (err as Error).message, pending_cells: counter.pendingCells }, 'cannot write request counts; keeping them in memory until the database answers');
        this.#failing = true;
        return;
      }
    }
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now();
      await pruneRequestCounts(db, this.#o.retentionSeconds).catch((err) => logger.warn({ err: (err as Error).message }, 'cannot delete old request counts'));
    }
  }

  /** Stops the timer and writes what is left, within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.flush(), timeout]);
    clearTimeout(timer);
    if (this.#o.counter.pendingCells > 0) {
      this.#o.logger.warn({ pending_cells: this.#o.counter.pendingCells }, 'request counts not written at shutdown: the availability SLI misses them');
    }
  }
}
