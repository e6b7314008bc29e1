import { randomBytes } from 'node:crypto';
import os from 'node:os';

/**
 * Per-minute request counts by route class and status code, kept in memory by each API process and
 * flushed to the `request_counts` table (src/obs/request-counter-flush.ts). They are the measured
 * availability SLI: unlike a Prometheus counter they survive restarts and add up across instances
 * with no Prometheus at all, and `evalops slo`, `evalops doctor` and `evalops incident` read them.
 */

/**
 * Upper bounds (ms) of the latency buckets kept with each count; one more bucket holds everything
 * slower. Stored as counts per bucket, so a p99 over any window and any number of instances is a sum
 * of arrays. The bounds are part of the table's meaning: append-only, like a migration.
 */
export const REQUEST_DURATION_BUCKETS_MS: readonly number[] = Object.freeze([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);

/** Buckets per row: the bounds above plus the overflow bucket. */
export const BUCKET_COUNT = REQUEST_DURATION_BUCKETS_MS.length + 1;

const V1_SEGMENT = /^\/v1\/([a-z][a-z0-9_-]{0,31})(?:\/|$)/;

/**
 * The route class of a Fastify route pattern: `jobs` for `/v1/jobs/:id`, `health`, `metrics`,
 * `docs`, `local`, `unmatched` (no route: a 404), else `other`. A handful of values, so the table
 * stays small however many URLs clients try.
 */
export function routeClassOf(routePattern: string | undefined): string {
  if (routePattern === undefined || routePattern === '') return 'unmatched';
  if (routePattern === '/health' || routePattern.startsWith('/health/')) return 'health';
  if (routePattern === '/metrics') return 'metrics';
  if (routePattern === '/docs' || routePattern.startsWith('/docs/')) return 'docs';
  if (routePattern.startsWith('/local/')) return 'local';
  return V1_SEGMENT.exec(routePattern)?.[1] ?? 'other';
}

/** Index of the latency bucket of `durationMs`. */
export function bucketIndex(durationMs: number): number {
  for (let i = 0; i < REQUEST_DURATION_BUCKETS_MS.length; i++) if (durationMs <= REQUEST_DURATION_BUCKETS_MS[i]!) return i;
  return REQUEST_DURATION_BUCKETS_MS.length;
}

/** The requests of one minute, route class and status code. */
export interface MinuteCount {
  /** Start of the minute (UTC, seconds and milliseconds zero). */
  readonly minute: Date;
  readonly routeClass: string;
  readonly statusCode: number;
  readonly requests: number;
  readonly durationMsSum: number;
  /** BUCKET_COUNT counts. */
  readonly buckets: readonly number[];
}

interface Cell {
  minuteMs: number;
  routeClass: string;
  statusCode: number;
  requests: number;
  durationMsSum: number;
  buckets: number[];
}

/** `host:pid:random`: one per process start, so a restarted process never adds to its predecessor's rows by accident. */
export function newInstanceId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export interface RequestCounterOptions {
  /** Names this process in the table. @defaultValue newInstanceId() */
  instanceId?: string;
  /**
   * Most cells kept while the database cannot be written. A cell is one minute × route class ×
   * status, so 50,000 is more than a day of outage at a dozen classes and statuses; beyond it the
   * oldest minutes are dropped (and counted in `dropped`).
   * @defaultValue 50_000
   */
  maxCells?: number;
  now?: () => number;
}

/** Counts requests in memory until they are drained for writing. */
export class RequestCounter {
  readonly instanceId: string;
  readonly #cells = new Map<string, Cell>();
  /**
   * The current minute's cells by route class and status code, and the route class of each route
   * pattern seen: record() runs for every request, and building a string key and classifying the
   * pattern each time cost more than the counting itself.
   */
  #minuteMs = Number.NaN;
  readonly #minuteCells = new Map<string, Map<number, Cell>>();
  readonly #routeClasses = new Map<string | undefined, string>();
  readonly #maxCells: number;
  readonly #now: () => number;
  /** Requests dropped because the memory cap was reached while the database could not be written. */
  dropped = 0;

  constructor(options: RequestCounterOptions = {}) {
    this.instanceId = options.instanceId ?? newInstanceId();
    this.#maxCells = options.maxCells ?? 50_000;
    this.#now = options.now ?? Date.now;
  }

  /** Counts one answered request. */
  record(routePattern: string | undefined, statusCode: number, durationMs: number): void {
    const minuteMs = Math.floor(this.#now() / 60_000) * 60_000;
    if (minuteMs !== this.#minuteMs) {
      this.#minuteCells.clear();
      this.#minuteMs = minuteMs;
    }
    let routeClass = this.#routeClasses.get(routePattern);
    if (routeClass === undefined) {
      routeClass = routeClassOf(routePattern);
      // Route patterns are few; the bound only guards against a caller passing raw URLs.
      if (this.#routeClasses.size < 1000) this.#routeClasses.set(routePattern, routeClass);
    }
    const cached = this.#minuteCells.get(routeClass)?.get(statusCode);
    if (cached !== undefined) {
      cached.requests += 1;
      cached.durationMsSum += durationMs;
      cached.buckets[bucketIndex(durationMs)]! += 1;
      return;
    }
    const buckets = new Array<number>(BUCKET_COUNT).fill(0);
    buckets[bucketIndex(durationMs)] = 1;
    // Merged into a pending cell of the same key (counts given back by restore) or added as a new one.
    this.#add({ minuteMs, routeClass, statusCode, requests: 1, durationMsSum: durationMs, buckets });
    const pending = this.#cells.get(cellKey(minuteMs, routeClass, statusCode));
    if (pending === undefined) return; // dropped at once: the memory cap is reached
    let byStatus = this.#minuteCells.get(routeClass);
    if (byStatus === undefined) this.#minuteCells.set(routeClass, (byStatus = new Map()));
    byStatus.set(statusCode, pending);
  }

  /** Cells waiting to be written. */
  get pendingCells(): number {
    return this.#cells.size;
  }

  /** Takes every pending count; write them, or give them back with `restore` when the write fails. */
  drain(): MinuteCount[] {
    const out = [...this.#cells.values()].map((c) => ({
      minute: new Date(c.minuteMs),
      routeClass: c.routeClass,
      statusCode: c.statusCode,
      requests: c.requests,
      durationMsSum: c.durationMsSum,
      buckets: c.buckets,
    }));
    this.#cells.clear();
    this.#minuteCells.clear();
    return out;
  }

  /** Puts back counts whose write failed, adding them to what arrived meanwhile. */
  restore(counts: readonly MinuteCount[]): void {
    for (const c of counts) {
      this.#add({ minuteMs: c.minute.getTime(), routeClass: c.routeClass, statusCode: c.statusCode, requests: c.requests, durationMsSum: c.durationMsSum, buckets: [...c.buckets] });
    }
  }

  #add(cell: Cell): void {
    const key = cellKey(cell.minuteMs, cell.routeClass, cell.statusCode);
    const existing = this.#cells.get(key);
    if (existing) {
      existing.requests += cell.requests;
      existing.durationMsSum += cell.durationMsSum;
      for (let i = 0; i < BUCKET_COUNT; i++) existing.buckets[i]! += cell.buckets[i] ?? 0;
      return;
    }
    this.#cells.set(key, cell);
    if (this.#cells.size > this.#maxCells) this.#dropOldest();
  }

  #dropOldest(): void {
    let oldestKey: string | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [key, cell] of this.#cells) {
      if (cell.minuteMs < oldest) {
        oldest = cell.minuteMs;
        oldestKey = key;
      }
    }
    if (oldestKey === undefined) return;
    this.dropped += this.#cells.get(oldestKey)!.requests;
    this.#cells.delete(oldestKey);
    this.#minuteCells.clear();
  }
}

const cellKey = (minuteMs: number, routeClass: string, statusCode: number) => `${minuteMs}|${routeClass}|${statusCode}`;

/**
 * The latency below which `q` (e.g. 0.99) of the requests fall, interpolated inside its bucket as
 * Prometheus' histogram_quantile does; null without requests. A quantile in the overflow bucket
 * reads as the largest finite bound (as in Prometheus): "at least 10 s".
 */
export function latencyQuantile(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i] ?? 0;
    if (cumulative + count >= rank && count > 0) {
      if (i >= REQUEST_DURATION_BUCKETS_MS.length) return REQUEST_DURATION_BUCKETS_MS.at(-1)!;
      const lower = i === 0 ? 0 : REQUEST_DURATION_BUCKETS_MS[i - 1]!;
      const upper = REQUEST_DURATION_BUCKETS_MS[i]!;
      return lower + (upper - lower) * ((rank - cumulative) / count);
    }
    cumulative += count;
  }
  return REQUEST_DURATION_BUCKETS_MS.at(-1)!;
}
