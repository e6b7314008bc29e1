import type { ChatMessage } from '../prompt-template.ts';
import { AdaptiveLimiter } from './adaptive-limiter.ts';
import {
  ProviderError,
  redactUrl,
  type CompleteOptions,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
  type ProviderDescription,
  type TokenUsage,
} from './provider.ts';
import { postJsonWithRetry, type RetryingPostDeps, type RetryPolicy } from './retrying-post.ts';

/**
 * Chat Completions (`POST {baseUrl}/chat/completions`) on any OpenAI-compatible server: OpenAI,
 * vLLM, Ollama (`http://host:11434/v1`), llama.cpp server, LM Studio, ...
 */

export interface OpenAIProviderOptions extends RetryPolicy {
  /** e.g. `https://api.openai.com/v1`; the path up to (not including) `/chat/completions`. */
  baseUrl: string;
  /** The key itself (resolved from the environment by the factory); sent as a Bearer token, never logged. */
  apiKey?: string;
  /** Upper bound of concurrent requests; the adaptive limiter moves below it on 429s. @defaultValue 8 */
  maxConcurrency?: number;
  /** Extra headers (e.g. `OpenAI-Organization`). */
  headers?: Record<string, string>;
}

export class OpenAIProvider implements Provider {
  readonly type = 'openai';
  readonly limiter: AdaptiveLimiter;
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #headers: Record<string, string>;
  readonly #policy: RetryPolicy;
  readonly #deps: RetryingPostDeps;

  constructor(options: OpenAIProviderOptions, deps: Omit<RetryingPostDeps, 'limiter'> = {}) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.#headers = { ...options.headers };
    this.#policy = {
      timeoutMs: options.timeoutMs,
      maxAttempts: options.maxAttempts,
      backoff: options.backoff,
      maxRetryAfterMs: options.maxRetryAfterMs,
    };
    this.limiter = new AdaptiveLimiter({ max: options.maxConcurrency ?? 8 });
    this.#deps = { ...deps, limiter: this.limiter };
  }

  /** `{type: 'openai', base_url}` with any credentials removed from the URL. */
  describe(): ProviderDescription {
    return { type: this.type, base_url: redactUrl(this.#baseUrl) };
  }

  /** Sends one Chat Completions request (seed passed through, streaming off) and returns the first choice. */
  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    const label = `openai provider at ${redactUrl(this.#baseUrl)}`;
    const headers: Record<string, string> = { ...this.#headers };
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    const body = {
      ...request.params,
      model: request.model,
      messages: request.messages.map((m: ChatMessage) => ({ role: m.role, content: m.content })),
      seed: request.seed,
      // Streaming answers would need a different parser; params must not turn it on behind our back.
      stream: false,
    };
    const result = await postJsonWithRetry(
      {
        url: `${this.#baseUrl}/chat/completions`,
        headers,
        body,
        label,
        secrets: [this.#apiKey, ...Object.values(this.#headers)].filter((s): s is string => s !== undefined),
        signal: options.signal,
      },
      this.#policy,
      this.#deps,
    );
    const output = firstChoiceContent(result.json);
    if (output === null) {
      throw new ProviderError(`${label}: the answer has no choices[0].message.content`, {
        retryable: false,
        status: result.status,
      });
    }
    return {
      output,
      tokens: usageOf(result.json),
      latencyMs: result.latencyMs,
      attempts: result.attempts,
      raw: result.json,
    };
  }
}

function firstChoiceContent(json: unknown): string | null {
  const choices = (json as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices) || choices.length === 0) return null;
  const message = (choices[0] as { message?: { content?: unknown } } | null)?.message;
  if (message === undefined || message === null) return null;
  // A null content (e.g. a tool call) is an empty answer, not a protocol error.
  if (message.content === null) return '';
  return typeof message.content === 'string' ? message.content : null;
}

function usageOf(json: unknown): TokenUsage | null {
  const usage = (json as { usage?: Record<string, unknown> } | null)?.usage;
  if (usage === undefined || usage === null || typeof usage !== 'object') return null;
  const prompt = usage.prompt_tokens;
  const completion = usage.completion_tokens;
  if (typeof prompt !== 'number' || typeof completion !== 'number') return null;
  const total = typeof usage.total_tokens === 'number' ? usage.total_tokens : prompt + completion;
  return { prompt, completion, total };
}
