import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { Logger } from '../../obs/logger.ts';
import { dispatchableJobs, openJobCountsByType } from '../job-store.ts';
import type { BullmqDispatcher } from './bullmq-dispatcher.ts';
import { brokerCounts, heldByBroker, type QueueSet } from './bullmq-queues.ts';

/** Rows checked per full pass; a larger backlog is covered over the following passes as it drains. */
const PASS_LIMIT = 50_000;
/** Rows changed this recently are skipped: their writer is still dispatching them. */
const QUIET_MS = 1000;
/** A full pass at least this often, whatever the counts say (stale copies can hide a missing job). */
const FULL_PASS_EVERY_TICKS = 12;

/**
 * Makes BullMQ hold every `queued` row: the guarantee that no accepted job is lost to a Redis outage,
 * a Redis restart without persistence, a crash between INSERT and enqueue, or a switch from inprocess
 * mode. Each tick compares the table's open rows per type with BullMQ's backlog (one count query, one
 * script per type); when the table has more, after a dispatch failure, once Redis is back, and every
 * FULL_PASS_EVERY_TICKS ticks, it checks each queued row's BullMQ hash and enqueues those missing.
 * Enqueuing twice is harmless: BullMQ ignores a job id it already holds, and a worker drops a copy
 * whose row is no longer queued.
 */
export class Reconciler {
  private dirty = true;
  private ticks = 0;
  private running: Promise<void> | undefined;
  private lastError: string | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly redis: Redis,
    private readonly queues: QueueSet,
    private readonly dispatcher: BullmqDispatcher,
    private readonly types: () => readonly string[],
    private readonly log: Logger,
  ) {}

  get error(): string | null {
    return this.lastError;
  }

  /** Asks for a full pass at the next tick (after a failed dispatch, or Redis coming back). */
  markDirty(): void {
    this.dirty = true;
  }

  /** One tick; overlapping calls share the pass in flight. */
  tick(): Promise<void> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves once no pass is in flight. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async run(): Promise<void> {
    if (this.redis.status !== 'ready') {
      this.dirty = true;
      return;
    }
    try {
      this.ticks++;
      const full = this.dirty || this.ticks % FULL_PASS_EVERY_TICKS === 0 || (await this.tableAhead());
      if (full) await this.fullPass();
      if (this.lastError) this.log.info('reconciler reaches Redis and the database again');
      this.lastError = null;
    } catch (err) {
      this.dirty = true;
      const message = err instanceof Error ? err.message : String(err);
      if (this.lastError !== message) this.log.warn({ err: message }, 'reconciler pass failed; retrying at the next tick');
      this.lastError = message;
    }
  }

  /** True when some type has more open rows in the table than jobs in BullMQ. */
  private async tableAhead(): Promise<boolean> {
    const table = await openJobCountsByType(this.db);
    for (const row of table) {
      const queued = row.queued_due + row.queued_later;
      if (queued === 0) continue;
      const c = await brokerCounts(this.queues.get(row.type));
      if (queued > c.waiting + c.delayed + c.active) return true;
    }
    return false;
  }

  /** Enqueues every queued row (up to PASS_LIMIT) whose BullMQ job is missing; returns how many. */
  async fullPass(): Promise<number> {
    this.dirty = false;
    const rows = await dispatchableJobs(this.db, { limit: PASS_LIMIT, quietMs: QUIET_MS });
    if (rows.length === 0) return 0;
    const held = await heldByBroker(this.redis, this.queues, rows);
    const missing = rows.filter((_, i) => !held[i]);
    if (missing.length === 0) return 0;
    const failuresBefore = this.dispatcher.failures;
    await this.dispatcher.dispatchAndWait(missing);
    if (this.dispatcher.failures !== failuresBefore) throw new Error(`could not enqueue ${missing.length} job(s): ${this.dispatcher.error}`);
    this.log.info({ enqueued: missing.length, checked: rows.length, types: [...new Set(missing.map((m) => m.type))] }, 'reconciler enqueued queued jobs BullMQ did not hold');
    return missing.length;
  }
}
