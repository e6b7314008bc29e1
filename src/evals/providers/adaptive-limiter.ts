/**
 * Adaptive concurrency limit for one provider (AIMD, as TCP congestion control): every success
 * raises the limit by one up to `max`; a throttle answer (HTTP 429) halves it, down to `min`.
 * It starts at `max` because most endpoints are not rate limited and a slow start would cost the
 * first seconds of every run.
 *
 * A burst of requests that were all in flight when the endpoint started throttling produces a
 * burst of 429s; reacting to each would collapse the limit to `min` for one congestion event. So
 * only throttles of requests started after the last decrease lower the limit again.
 */

export type PermitOutcome = 'success' | 'throttled' | 'neutral';

export interface AdaptiveLimiterOptions {
  /** Upper bound of concurrent requests (the configured concurrency). */
  max: number;
  /** @defaultValue 1 */
  min?: number;
  /** @defaultValue max */
  initial?: number;
}

/** A held slot; call `release` exactly once with how the request went. */
export interface Permit {
  release(outcome: PermitOutcome): void;
}

interface Waiter {
  resolve: (permit: Permit) => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** AIMD concurrency limiter: halve on throttle, +1 on success, FIFO queue for waiters. */
export class AdaptiveLimiter {
  readonly max: number;
  readonly min: number;
  #limit: number;
  #inFlight = 0;
  /** Bumped on each decrease; permits remember the epoch they started in. */
  #epoch = 0;
  readonly #waiters: Waiter[] = [];

  constructor(options: AdaptiveLimiterOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new RangeError('AdaptiveLimiter: max must be an integer >= 1');
    this.max = options.max;
    this.min = Math.max(1, Math.min(options.min ?? 1, this.max));
    this.#limit = Math.min(this.max, Math.max(this.min, options.initial ?? this.max));
  }

  /** Current concurrency limit. */
  get limit(): number {
    return this.#limit;
  }

  /** Requests holding a permit now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests waiting for a permit. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Waits for a slot (FIFO); rejects with the signal's reason if it aborts first. */
  acquire(signal?: AbortSignal): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#inFlight < this.#limit && this.#waiters.length === 0) return Promise.resolve(this.#grant());
    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#waiters.indexOf(waiter);
          if (at !== -1) this.#waiters.splice(at, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Runs `fn` under a permit; `classify` maps its result or error to an outcome (default: success / neutral). */
  async run<T>(
    fn: () => Promise<T>,
    options: { signal?: AbortSignal; classify?: (result: { ok: true; value: T } | { ok: false; error: unknown }) => PermitOutcome } = {},
  ): Promise<T> {
    const permit = await this.acquire(options.signal);
    try {
      const value = await fn();
      permit.release(options.classify?.({ ok: true, value }) ?? 'success');
      return value;
    } catch (error) {
      permit.release(options.classify?.({ ok: false, error }) ?? 'neutral');
      throw error;
    }
  }

  #grant(): Permit {
    this.#inFlight += 1;
    const epoch = this.#epoch;
    let released = false;
    return {
      release: (outcome) => {
        if (released) return;
        released = true;
        this.#inFlight -= 1;
        if (outcome === 'success') {
          this.#limit = Math.min(this.max, this.#limit + 1);
        } else if (outcome === 'throttled' && epoch === this.#epoch) {
          this.#limit = Math.max(this.min, Math.floor(this.#limit / 2));
          this.#epoch += 1;
        }
        this.#drain();
      },
    };
  }

  #drain(): void {
    while (this.#inFlight < this.#limit && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift() as Waiter;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.#grant());
    }
  }
}
