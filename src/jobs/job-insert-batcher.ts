import type { Kysely, Transaction } from 'kysely';
import type { Database, JobRow } from '../db/schema.ts';
import type { LocalWakeUp } from './dispatch.ts';
import { type InsertJob, type InsertOptions, insertJobs, notifyJobsQueued } from './job-store.ts';

/** The most single submits one INSERT carries; more waiting go in the next one. */
const MAX_BATCH = 200;

/** Other processes hear of new rows through at most one NOTIFY per this many milliseconds. */
export const PEER_NOTIFY_INTERVAL_MS = 5;

/**
 * SQLSTATE classes that say the connection or the server failed, not a value of the statement:
 * connection exception, insufficient resources, operator intervention, system error, internal error.
 */
const SERVER_FAILURE_CLASSES = new Set(['08', '53', '57', '58', 'XX']);

interface Pending {
  job: InsertJob;
  resolve: (row: JobRow | undefined) => void;
  reject: (err: unknown) => void;
}

/** An all-or-none batch waiting for its turn; settles its own caller and never rejects. */
type AtomicWrite = () => Promise<void>;

/**
 * Group commit for submits: the jobs submitted in one turn of the event loop, and those arriving
 * while the previous INSERT is in flight, are written by one multi-row INSERT, so concurrent
 * submits share one round trip and one commit. An idle submit is written at once (next turn).
 *
 * Each caller gets its own outcome, as if it had inserted alone: its row; undefined when its
 * idempotency key is taken (by a stored row, or by an earlier submit of the same INSERT: the first
 * in arrival order wins); or its own error. When the INSERT fails for one of its values (a data
 * exception, a constraint, a deadlock), the jobs are written again one at a time, so a bad row
 * fails only its own request. A failure of the connection fails every caller of that INSERT.
 *
 * With a `wakeUp` (the dispatcher wakes this process's runner itself), the INSERT tells the
 * trigger to send no NOTIFY: one per commit would put every commit in line for PostgreSQL's single
 * notification lock. Other processes still hear of the rows, from at most one NOTIFY per
 * PEER_NOTIFY_INTERVAL_MS: carried by the INSERT itself when the interval has passed, else sent
 * alone at its end unless a later INSERT carried one first.
 *
 * A batch submit (insertAtomic) is written all or none, in its own transaction, taking its turn
 * between these groups: statements still run one at a time, which the NOTIFY bookkeeping relies on.
 */
export class JobInsertBatcher {
  private pending: Pending[] = [];
  private atomic: AtomicWrite[] = [];
  private scheduled = false;
  private writing = false;
  /** When the last NOTIFY for other processes was sent (carried or alone). */
  private notifiedAt = Number.NEGATIVE_INFINITY;
  /** Rows were committed after the start of the last NOTIFY's statement: one more is owed. */
  private owed = false;
  private owedTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly wakeUp: LocalWakeUp | undefined,
  ) {}

  /** Inserts one queued job with the others of its group; undefined when its idempotency key is taken. */
  insert(job: InsertJob): Promise<JobRow | undefined> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Inserts `jobs` all or none: one INSERT in one transaction, silent and announced to other
   * processes as the groups are. A job whose idempotency key is taken (by a stored row or an earlier
   * job of `jobs`) is left out, as insertJobs does. `settle` runs inside the transaction with the
   * rows inserted, to look up or check what it needs through `trx`; its result is the answer, and a
   * throw from it (or a refused INSERT) rolls every row back.
   *
   * One statement rather than several: insertJobs writes its rows in idempotency-key order, so two
   * batches sharing keys (from two API processes) take their row locks in one order and never
   * deadlock, which rows split over several statements would not guarantee.
   */
  insertAtomic<T>(jobs: readonly InsertJob[], settle: (trx: Transaction<Database>, rows: JobRow[]) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.atomic.push(async () => {
        const options = this.insertOptions();
        let result: T;
        try {
          result = await this.db.transaction().execute(async (trx) => settle(trx, await insertJobs(trx, jobs, options)));
        } catch (err) {
          this.written(options, false);
          reject(err);
          return;
        }
        this.written(options, true);
        resolve(result);
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn: every request read in it joins.
    setImmediate(() => {
      this.scheduled = false;
      void this.writeLoop();
    });
  }

  private async writeLoop(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.pending.length || this.atomic.length) {
        if (this.pending.length) await this.write(this.pending.splice(0, MAX_BATCH));
        const batch = this.atomic.shift();
        if (batch) await batch();
      }
    } finally {
      this.writing = false;
    }
    // A NOTIFY that fell due while the last INSERT was in flight.
    if (this.owed && !this.owedTimer) this.armOwedNotify();
  }

  private async write(batch: Pending[]): Promise<void> {
    const options = this.insertOptions();
    let rows: JobRow[];
    try {
      rows = await insertJobs(this.db, batch.map((p) => p.job), options);
    } catch (err) {
      if (batch.length === 1 || !isStatementError(err)) {
        for (const p of batch) p.reject(err);
        this.written(options, false);
        return;
      }
      // One of the values was refused: find whose, by writing each alone, in arrival order.
      for (const p of batch) {
        const single = this.insertOptions();
        try {
          const [row] = await insertJobs(this.db, [p.job], single);
          this.written(single, true);
          p.resolve(row);
        } catch (own) {
          this.written(single, false);
          p.reject(own);
        }
      }
      return;
    }
    this.written(options, true);
    const byId = new Map(rows.map((r) => [r.job_id, r]));
    for (const p of batch) p.resolve(byId.get(p.job.jobId));
  }

  /** Silent trigger with a wake-up dispatcher; the NOTIFY for other processes when it is due. */
  private insertOptions(): InsertOptions {
    if (!this.wakeUp) return {};
    if (!this.wakeUp.notifyPeers || performance.now() - this.notifiedAt < PEER_NOTIFY_INTERVAL_MS) return { skipNotify: true };
    this.notifiedAt = performance.now();
    return { skipNotify: true, notify: this.wakeUp.senderId };
  }

  /** Bookkeeping after a statement: a committed INSERT that carried no NOTIFY leaves one owed. */
  private written(options: InsertOptions, committed: boolean): void {
    if (!this.wakeUp?.notifyPeers || !committed) return;
    if (options.notify !== undefined) {
      // Its commit came after every earlier INSERT's (they run one at a time): all are announced.
      this.owed = false;
      if (this.owedTimer) clearTimeout(this.owedTimer);
      this.owedTimer = undefined;
      return;
    }
    this.owed = true;
    if (!this.owedTimer) this.armOwedNotify();
  }

  private armOwedNotify(): void {
    const wait = Math.max(0, this.notifiedAt + PEER_NOTIFY_INTERVAL_MS - performance.now());
    this.owedTimer = setTimeout(() => {
      this.owedTimer = undefined;
      // An INSERT in flight: the loop re-arms when it ends, and the next one carries the NOTIFY.
      if (!this.owed || this.writing) return;
      this.owed = false;
      this.notifiedAt = performance.now();
      const wakeUp = this.wakeUp!;
      notifyJobsQueued(this.db, wakeUp.senderId).catch((err) => wakeUp.onNotifyError(err));
    }, wait);
  }
}

/** A PostgreSQL error about the statement (a value, a constraint, a lock), not the connection or the server. */
function isStatementError(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown } | null;
  if (!e || typeof e.code !== 'string' || typeof e.severity !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return false;
  return !SERVER_FAILURE_CLASSES.has(e.code.slice(0, 2));
}
