import { backoffDelay, parseRetryAfter, retryAfterDelay, sleep as realSleep, type BackoffOptions, type Sleep } from '../http-retry.ts';
import { redactUrl } from '../../config/url-redaction.ts';
import type { AdaptiveLimiter } from './adaptive-limiter.ts';
import { ProviderError, scrubSecrets } from './provider.ts';

/**
 * One JSON POST with the retry policy every HTTP provider shares: per-attempt timeout, retries on
 * 408/429/5xx and network errors with jittered backoff or the server's `Retry-After`, an optional
 * adaptive concurrency limiter told about 429s, and error messages scrubbed of secrets.
 */

/** A shared admission gate (e.g. a Redis-backed request-rate limit held across workers). */
export interface RequestGate {
  /** Resolves when one more request may be sent. */
  wait(signal?: AbortSignal): Promise<void>;
}

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  status: number | null;
  reason: string;
}

export interface RetryPolicy {
  /** Per-attempt timeout. @defaultValue 60_000 */
  timeoutMs?: number;
  /** Attempts in total, the first included. @defaultValue 5 */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** A longer `Retry-After` than this is not waited out: the call fails (retryable) instead. @defaultValue 120_000 */
  maxRetryAfterMs?: number;
}

export interface RetryingPostDeps {
  fetch?: typeof fetch;
  sleep?: Sleep;
  random?: () => number;
  limiter?: AdaptiveLimiter;
  gate?: RequestGate;
  /** Called before each wait between attempts (for logs and metrics; carries no secrets). */
  onRetry?: (info: RetryInfo) => void;
  /** Says why a redirect's target host is not allowed (null when it is); named in the redirect error. */
  redirectRefusal?: (url: string) => string | null;
}

export interface RetryingPostRequest {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  /** Names the endpoint in errors, e.g. `openai provider at http://127.0.0.1:8000/v1` (no credentials). */
  label: string;
  /** Values that must never appear in an error (API keys, header secrets). */
  secrets: readonly string[];
  signal?: AbortSignal;
}

export interface RetryingPostResult {
  json: unknown;
  status: number;
  latencyMs: number;
  attempts: number;
}

const RETRYABLE_STATUS = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** POSTs `body` as JSON, retrying as the policy allows; resolves with the parsed 2xx answer. */
export async function postJsonWithRetry(
  request: RetryingPostRequest,
  policy: RetryPolicy = {},
  deps: RetryingPostDeps = {},
): Promise<RetryingPostResult> {
  request = moveUrlCredentials(request);
  const maxAttempts = Math.max(1, policy.maxAttempts ?? 5);
  const maxRetryAfterMs = policy.maxRetryAfterMs ?? 120_000;
  const sleep = deps.sleep ?? realSleep;
  const random = deps.random ?? Math.random;
  for (let attempt = 1; ; attempt += 1) {
    let failure: ProviderError;
    try {
      return { ...(await attemptOnce(request, policy.timeoutMs ?? 60_000, deps)), attempts: attempt };
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      failure = error;
    }
    if (!failure.retryable) throw failure;
    if (attempt >= maxAttempts) {
      throw new ProviderError(`${request.label}: gave up after ${attempt} attempts: ${withoutLabel(failure.message, request.label)}`, {
        retryable: true,
        status: failure.upstreamStatus,
        retryAfterMs: failure.retryAfterMs,
        cause: failure,
      });
    }
    let delayMs: number;
    if (failure.retryAfterMs !== null) {
      if (failure.retryAfterMs > maxRetryAfterMs) {
        throw new ProviderError(
          `${request.label}: asked to wait ${Math.ceil(failure.retryAfterMs / 1000)} s (Retry-After), ` +
            `longer than the ${Math.ceil(maxRetryAfterMs / 1000)} s allowed: ${withoutLabel(failure.message, request.label)}`,
          { retryable: true, status: failure.upstreamStatus, retryAfterMs: failure.retryAfterMs, cause: failure },
        );
      }
      delayMs = retryAfterDelay(failure.retryAfterMs, random);
    } else {
      delayMs = backoffDelay(attempt, policy.backoff, random);
    }
    deps.onRetry?.({ attempt, delayMs, status: failure.upstreamStatus, reason: failure.message });
    await sleep(delayMs, request.signal);
  }
}

async function attemptOnce(
  request: RetryingPostRequest,
  timeoutMs: number,
  deps: RetryingPostDeps,
): Promise<Omit<RetryingPostResult, 'attempts'>> {
  const { signal } = request;
  await deps.gate?.wait(signal);
  const permit = deps.limiter ? await deps.limiter.acquire(signal) : null;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const started = performance.now();
  let outcome: 'success' | 'throttled' | 'neutral' = 'neutral';
  try {
    let response: Response;
    let text: string;
    try {
      response = await (deps.fetch ?? fetch)(request.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...request.headers },
        body: JSON.stringify(request.body),
        // Redirects are never followed: the answer would carry the request, the credentials with
        // it, to a host the policy never saw.
        redirect: 'manual',
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (controller.signal.aborted) {
        throw new ProviderError(`${request.label}: no answer within ${timeoutMs} ms (timeout)`, {
          retryable: true,
          cause: error,
        });
      }
      throw new ProviderError(`${request.label}: could not reach the endpoint (${scrubSecrets(networkReason(error), request.secrets)})`, {
        retryable: true,
      });
    }
    const latencyMs = Math.round(performance.now() - started);
    if (response.ok) {
      try {
        const json: unknown = JSON.parse(text);
        outcome = 'success';
        return { json, status: response.status, latencyMs };
      } catch {
        throw new ProviderError(
          `${request.label}: answered HTTP ${response.status} with a body that is not JSON: ${excerpt(text, request.secrets)}`,
          { retryable: false, status: response.status },
        );
      }
    }
    if (response.status >= 300 && response.status < 400) throw redirectError(request, response, deps);
    if (response.status === 429) outcome = 'throttled';
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const retryable = RETRYABLE_STATUS(response.status);
    throw new ProviderError(
      `${request.label}: HTTP ${response.status}${statusHint(response.status)}: ${errorText(text, request.secrets)}`,
      { retryable, status: response.status, retryAfterMs: retryable ? retryAfterMs : null },
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    permit?.release(outcome);
  }
}

/**
 * fetch refuses URLs with user:password, and they must never reach an error message: move them to
 * a Basic Authorization header (unless one is set) and to the list of secrets to scrub.
 */
function moveUrlCredentials(request: RetryingPostRequest): RetryingPostRequest {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return request;
  }
  if (url.username === '' && url.password === '') return request;
  const user = decodeURIComponent(url.username);
  const rawPassword = url.password;
  const password = decodeURIComponent(rawPassword);
  url.username = '';
  url.password = '';
  const headers = { ...request.headers };
  const hasAuth = Object.keys(headers).some((name) => name.toLowerCase() === 'authorization');
  if (!hasAuth) headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return { ...request, url: url.toString(), headers, secrets: [...request.secrets, password, rawPassword].filter((s) => s !== '') };
}

/** A 3xx is an error, never followed; it names where it pointed (credentials masked) and, when refused, why. */
function redirectError(request: RetryingPostRequest, response: Response, deps: RetryingPostDeps): ProviderError {
  const location = response.headers.get('location');
  let target: string | null = null;
  if (location !== null) {
    try {
      target = new URL(location, request.url).toString();
    } catch {
      target = null;
    }
  }
  const refusal = target === null ? null : (deps.redirectRefusal?.(target) ?? null);
  const where = target === null ? 'without a usable Location' : `to ${redactUrl(target)}`;
  return new ProviderError(
    `${request.label}: HTTP ${response.status} redirects ${where}; provider redirects are not followed: set the provider's URL to the final address${refusal === null ? '' : ` (${refusal})`}`,
    { retryable: false, status: response.status },
  );
}

function withoutLabel(message: string, label: string): string {
  return message.startsWith(`${label}: `) ? message.slice(label.length + 2) : message;
}

function statusHint(status: number): string {
  if (status === 401) return ' (the credentials were refused: check the API key environment variable)';
  if (status === 403) return ' (the credentials lack permission for this model or endpoint)';
  if (status === 404) return ' (check the base URL and the model name)';
  if (status === 429) return ' (rate limited)';
  return '';
}

/** The endpoint's own error sentence when it sends the usual `{error: {message}}`, else a body excerpt. */
function errorText(text: string, secrets: readonly string[]): string {
  try {
    const json = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message =
      typeof json.error === 'string'
        ? json.error
        : typeof json.error?.message === 'string'
          ? json.error.message
          : typeof json.message === 'string'
            ? json.message
            : null;
    if (message !== null) return excerpt(message, secrets);
  } catch {
    // not JSON: fall through to the raw excerpt
  }
  return excerpt(text, secrets);
}

function excerpt(text: string, secrets: readonly string[]): string {
  const clean = scrubSecrets(text.replace(/\s+/g, ' ').trim(), secrets);
  if (clean === '') return '(empty body)';
  return clean.length > 300 ? `${clean.slice(0, 300)}...` : clean;
}

function networkReason(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}
