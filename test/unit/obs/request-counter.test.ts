import { describe, expect, it } from 'vitest';
import { BUCKET_COUNT, bucketIndex, latencyQuantile, REQUEST_DURATION_BUCKETS_MS, RequestCounter, routeClassOf } from '../../../src/obs/request-counter.ts';

describe('routeClassOf', () => {
  it('maps route patterns to a handful of classes', () => {
    expect(routeClassOf('/v1/jobs')).toBe('jobs');
    expect(routeClassOf('/v1/jobs/:id/cancel')).toBe('jobs');
    expect(routeClassOf('/v1/evaluations/:id')).toBe('evaluations');
    expect(routeClassOf('/v1/slo')).toBe('slo');
    expect(routeClassOf('/health')).toBe('health');
    expect(routeClassOf('/health/detailed')).toBe('health');
    expect(routeClassOf('/metrics')).toBe('metrics');
    expect(routeClassOf('/docs/json')).toBe('docs');
    expect(routeClassOf('/local/sql')).toBe('local');
    // A 404 has no route: the URL a client tried never becomes a class.
    expect(routeClassOf(undefined)).toBe('unmatched');
    expect(routeClassOf('/favicon.ico')).toBe('other');
    expect(routeClassOf('/v1/')).toBe('other');
  });
});

describe('RequestCounter', () => {
  const at = (iso: string) => () => Date.parse(iso);

  it('adds requests of the same minute, class and status into one cell, with their latency buckets', () => {
    let now = Date.parse('2025-01-10T09:30:05Z');
    const counter = new RequestCounter({ instanceId: 'a', now: () => now });
    counter.record('/v1/jobs', 200, 3);
    counter.record('/v1/jobs/:id', 200, 7);
    counter.record('/v1/jobs', 503, 1200);
    now = Date.parse('2025-01-10T09:31:00Z');
    counter.record('/v1/jobs', 200, 20_000);
    const cells = counter.drain().sort((x, y) => x.minute.getTime() - y.minute.getTime() || x.statusCode - y.statusCode);
    expect(cells).toHaveLength(3);
    expect(cells[0]).toMatchObject({ minute: new Date('2025-01-10T09:30:00Z'), routeClass: 'jobs', statusCode: 200, requests: 2, durationMsSum: 10 });
    expect(cells[0]!.buckets[bucketIndex(3)]).toBe(1); // ≤ 5 ms
    expect(cells[0]!.buckets[bucketIndex(7)]).toBe(1); // ≤ 10 ms
    expect(cells[1]).toMatchObject({ statusCode: 503, requests: 1 });
    expect(cells[1]!.buckets[REQUEST_DURATION_BUCKETS_MS.indexOf(2500)]).toBe(1);
    expect(cells[2]!.buckets[BUCKET_COUNT - 1]).toBe(1); // slower than every bound
    expect(counter.pendingCells).toBe(0);
  });

  it('takes back counts whose write failed, adding what arrived meanwhile', () => {
    const counter = new RequestCounter({ instanceId: 'a', now: at('2025-01-10T09:30:05Z') });
    counter.record('/v1/jobs', 500, 1);
    const failedWrite = counter.drain();
    counter.record('/v1/jobs', 500, 1);
    counter.restore(failedWrite);
    const [cell] = counter.drain();
    expect(cell).toMatchObject({ requests: 2 });
    expect(cell!.buckets[0]).toBe(2);
  });

  it('counts every request exactly across drains, restores and minute changes', () => {
    let now = Date.parse('2025-01-10T09:30:05Z');
    const counter = new RequestCounter({ instanceId: 'a', now: () => now });
    const total = () => counter.drain().reduce((sum, c) => sum + c.requests, 0);
    for (let i = 0; i < 1000; i++) counter.record('/health', 200, 1);
    const first = counter.drain();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ requests: 1000, durationMsSum: 1000 });
    // A drained cell is not counted into any more: the next request starts a new cell.
    counter.record('/health', 200, 1);
    expect(first[0]!.requests).toBe(1000);
    counter.restore(first);
    counter.record('/health', 200, 1);
    now += 60_000;
    counter.record('/health', 200, 1);
    counter.record(undefined, 404, 1);
    const cells = counter.drain().sort((x, y) => x.minute.getTime() - y.minute.getTime() || x.statusCode - y.statusCode);
    expect(cells.map((c) => [c.minute.toISOString(), c.routeClass, c.statusCode, c.requests])).toEqual([
      ['2025-01-10T09:30:00.000Z', 'health', 200, 1002],
      ['2025-01-10T09:31:00.000Z', 'health', 200, 1],
      ['2025-01-10T09:31:00.000Z', 'unmatched', 404, 1],
    ]);
    expect(total()).toBe(0);
  });

  it('keeps at most maxCells while the database cannot be written, dropping the oldest minutes', () => {
    let now = Date.parse('2025-01-10T09:00:00Z');
    const counter = new RequestCounter({ instanceId: 'a', maxCells: 3, now: () => now });
    for (let minute = 0; minute < 5; minute++) {
      now = Date.parse('2025-01-10T09:00:00Z') + minute * 60_000;
      counter.record('/v1/jobs', 200, 1);
      counter.record('/v1/jobs', 200, 1);
    }
    expect(counter.pendingCells).toBe(3);
    expect(counter.dropped).toBe(4);
    expect(counter.drain().map((c) => c.minute.toISOString()).sort()).toEqual(['2025-01-10T09:02:00.000Z', '2025-01-10T09:03:00.000Z', '2025-01-10T09:04:00.000Z']);
  });
});

describe('latencyQuantile', () => {
  const buckets = (entries: Record<number, number>) => {
    const b = new Array<number>(BUCKET_COUNT).fill(0);
    for (const [i, n] of Object.entries(entries)) b[Number(i)] = n;
    return b;
  };

  it('interpolates inside the bucket as histogram_quantile does', () => {
    // 100 requests, all in (5, 10] ms: the 99th is 99% of the way through the bucket.
    expect(latencyQuantile(buckets({ 1: 100 }), 0.99)).toBeCloseTo(9.95, 10);
    // 90 fast (≤ 5 ms), 10 in (250, 500]: rank 99 is the 9th of the 10 slow ones: 250 + 250 × 9/10.
    expect(latencyQuantile(buckets({ 0: 90, 6: 10 }), 0.99)).toBeCloseTo(475, 10);
  });

  it('reads the overflow bucket as the largest bound, and nothing as null', () => {
    expect(latencyQuantile(buckets({ [BUCKET_COUNT - 1]: 5 }), 0.99)).toBe(10_000);
    expect(latencyQuantile(buckets({}), 0.99)).toBeNull();
  });
});
