import { EvalError } from '../eval-errors.ts';
import type { ChatMessage } from '../prompt-template.ts';

/**
 * The seam between the evaluation runner and model endpoints. The runner only sees `Provider`;
 * each adapter (openai, http, echo, ...) lives in its own file of this folder and is chosen by
 * `provider-factory.ts`, so adding one touches nothing else.
 */

export interface CompletionRequest {
  /** Rendered messages (no placeholders left). */
  messages: ChatMessage[];
  model: string;
  /** Sampling parameters passed to the endpoint as they are (temperature, max_tokens, ...). */
  params: Record<string, unknown>;
  /** Per-case seed; providers that support seeding pass it on. */
  seed: number;
}

export interface TokenUsage {
  prompt: number;
  completion: number;
  total: number;
}

export interface CompletionResult {
  output: string;
  /** Null when the endpoint does not report usage. */
  tokens: TokenUsage | null;
  /** Duration of the successful attempt, in milliseconds. */
  latencyMs: number;
  /** How many HTTP attempts it took (1 when the first succeeded). */
  attempts?: number;
  /** The endpoint's parsed answer, for debugging and the response record. */
  raw?: unknown;
}

export interface CompleteOptions {
  signal?: AbortSignal;
}

/** Where requests go, safe to log and to put in run metadata (no credentials). */
export interface ProviderDescription {
  type: string;
  base_url: string | null;
}

export interface Provider {
  readonly type: string;
  /** Identity used in run metadata and response cache keys. */
  describe(): ProviderDescription;
  /** Answers one chat request; throws `ProviderError` when the endpoint cannot. */
  complete(request: CompletionRequest, options?: CompleteOptions): Promise<CompletionResult>;
}

export interface ProviderErrorOptions {
  retryable: boolean;
  /** HTTP status of the last answer, null for network errors and timeouts. */
  status?: number | null;
  /** What the endpoint asked us to wait (Retry-After), in milliseconds. */
  retryAfterMs?: number | null;
  cause?: unknown;
}

/**
 * A model endpoint failed. `retryable` says whether the same request may succeed later (429, 5xx,
 * timeouts, network errors) or never will (400, 401, a malformed answer). Messages never contain
 * credentials.
 */
export class ProviderError extends EvalError {
  /**
   * HTTP status the endpoint answered (null for network errors and timeouts). Not `status`: on an
   * `AppError` that is the status the evalops API would answer with.
   */
  readonly upstreamStatus: number | null;
  readonly retryAfterMs: number | null;

  constructor(message: string, options: ProviderErrorOptions) {
    super(options.retryable ? 'UNAVAILABLE' : 'VALIDATION', message, { cause: options.cause });
    this.upstreamStatus = options.status ?? null;
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}

/** The one URL redaction (src/config/url-redaction.ts), for provider URLs in errors, logs and run metadata. */
export { redactUrl } from '../../config/url-redaction.ts';

/** Replaces every occurrence of the given secrets (and OpenAI-style `sk-...` keys) in `text`. */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  }
  return out.replace(/\bsk-[A-Za-z0-9_*-]{8,}/g, 'sk-[REDACTED]');
}
