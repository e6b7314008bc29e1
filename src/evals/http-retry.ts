/**
 * Retry timing shared by the HTTP clients of the evals (model providers, MLflow): `Retry-After`
 * parsing, jittered exponential backoff and an abortable sleep. Randomness and sleeping are
 * injectable so tests can check the chosen delays without waiting for them.
 */

/** Sleeps `ms`, rejecting early with the signal's reason when it aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface BackoffOptions {
  /** First retry waits around this long. @defaultValue 500 */
  baseMs?: number;
  /** No computed wait exceeds this. @defaultValue 30_000 */
  maxMs?: number;
}

/** Real timer-based sleep, abortable. */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Parses a `Retry-After` header (delay-seconds or an HTTP date) into milliseconds from `now`.
 * Returns null when absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | null {
  if (header === null || header === undefined) return null;
  const text = header.trim();
  if (text === '') return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential, capped, with "equal
 * jitter" (half fixed, half random) so that concurrent callers spread out but never retry at once.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Delay honouring a server's `Retry-After`: the asked wait plus up to 10% jitter, so that callers
 * told the same instant do not all come back in the same millisecond.
 */
export function retryAfterDelay(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs + random() * retryAfterMs * 0.1);
}
