import { describe, expect, it } from 'vitest';
import { AdaptiveLimiter } from '../../../src/evals/providers/adaptive-limiter.ts';

describe('AdaptiveLimiter', () => {
  it('starts at max and halves on a throttle, never below min', async () => {
    const limiter = new AdaptiveLimiter({ max: 16, min: 2 });
    expect(limiter.limit).toBe(16);
    for (const expected of [8, 4, 2, 2]) {
      const permit = await limiter.acquire();
      permit.release('throttled');
      expect(limiter.limit).toBe(expected);
    }
  });

  it('adds one per success up to max', async () => {
    const limiter = new AdaptiveLimiter({ max: 4, initial: 1 });
    for (const expected of [2, 3, 4, 4]) {
      (await limiter.acquire()).release('success');
      expect(limiter.limit).toBe(expected);
    }
  });

  it('reacts once to a burst of throttles from requests that were already in flight', async () => {
    const limiter = new AdaptiveLimiter({ max: 8 });
    const permits = await Promise.all(Array.from({ length: 8 }, () => limiter.acquire()));
    for (const permit of permits) permit.release('throttled');
    expect(limiter.limit).toBe(4);
    // A request started after the decrease is a new signal.
    (await limiter.acquire()).release('throttled');
    expect(limiter.limit).toBe(2);
  });

  it('queues beyond the limit in FIFO order and admits as permits are released', async () => {
    const limiter = new AdaptiveLimiter({ max: 2 });
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const order: string[] = [];
    const c = limiter.acquire().then((p) => {
      order.push('c');
      return p;
    });
    const d = limiter.acquire().then((p) => {
      order.push('d');
      return p;
    });
    expect(limiter.inFlight).toBe(2);
    expect(limiter.waiting).toBe(2);
    a.release('neutral');
    (await c).release('neutral');
    b.release('neutral');
    (await d).release('neutral');
    expect(order).toEqual(['c', 'd']);
    expect(limiter.inFlight).toBe(0);
  });

  it('lowers the number of requests admitted after a throttle', async () => {
    const limiter = new AdaptiveLimiter({ max: 4 });
    const held = await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    held[0]?.release('throttled'); // limit 2, in flight 3
    held[1]?.release('neutral'); // in flight 2: still at the limit
    let admitted = false;
    const waiting = limiter.acquire().then((p) => {
      admitted = true;
      return p;
    });
    await Promise.resolve();
    expect(admitted).toBe(false);
    held[2]?.release('neutral'); // in flight 1 < 2
    (await waiting).release('neutral');
    expect(admitted).toBe(true);
    held[3]?.release('neutral');
  });

  it('removes an aborted waiter from the queue', async () => {
    const limiter = new AdaptiveLimiter({ max: 1 });
    const held = await limiter.acquire();
    const controller = new AbortController();
    const pending = limiter.acquire(controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(pending).rejects.toThrow('cancelled');
    expect(limiter.waiting).toBe(0);
    held.release('neutral');
    expect(limiter.inFlight).toBe(0);
  });

  it('run() classifies results and always releases', async () => {
    const limiter = new AdaptiveLimiter({ max: 4 });
    await expect(
      limiter.run(async () => {
        throw new Error('429');
      }, { classify: (r) => (r.ok ? 'success' : 'throttled') }),
    ).rejects.toThrow('429');
    expect(limiter.limit).toBe(2);
    expect(limiter.inFlight).toBe(0);
    expect(await limiter.run(async () => 'ok')).toBe('ok');
    expect(limiter.limit).toBe(3);
  });
});
