import { responseCacheKey } from './response-cache-key.ts';
import {
  ProviderError,
  type CompleteOptions,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
  type ProviderDescription,
} from './providers/provider.ts';

/**
 * Live/replay around any provider. In `live` mode every new answer is recorded, and by default a
 * recorded answer is reused when present (a resumed run does not pay twice for the cases it already
 * answered; pass `reuseInLive: false` to always call the provider, e.g. to measure nondeterminism);
 * in `replay` mode only the record answers and a miss fails the case with a sentence. Where the
 * record lives (database table, files) is the caller's `ResponseStore`.
 */

export type RunMode = 'live' | 'replay';

/** What is kept per key: enough to reproduce the result row byte for byte. */
export interface RecordedResponse {
  output: string;
  tokens: CompletionResult['tokens'];
  latencyMs: number;
  /** Who answered; informational (stores may keep it beside the key). */
  provider?: string;
  model?: string;
}

/** A request that failed in live mode, kept so that a replay fails the case with the same sentence. */
export interface RecordedFailure {
  error: string;
  provider?: string;
  model?: string;
}

export interface ResponseStore {
  get(key: string): Promise<RecordedResponse | undefined>;
  put(key: string, response: RecordedResponse): Promise<void>;
  /**
   * Optional: stores that implement these record failed requests too. A recorded failure never
   * answers in live mode (the provider is asked again) and never replaces a recorded answer.
   */
  getFailure?(key: string): Promise<RecordedFailure | undefined>;
  putFailure?(key: string, failure: RecordedFailure): Promise<void>;
}

export interface CachedCompletionResult extends CompletionResult {
  cached: boolean;
  cacheKey: string;
}

export interface CachingProvider extends Provider {
  complete(request: CompletionRequest, options?: CompleteOptions): Promise<CachedCompletionResult>;
}

/** Wraps `provider` with the record in `store`, in `mode`. */
export function withResponseCache(
  provider: Provider,
  store: ResponseStore,
  mode: RunMode,
  options: { reuseInLive?: boolean } = {},
): CachingProvider {
  const reuse = mode === 'replay' || (options.reuseInLive ?? true);
  return {
    type: provider.type,
    describe: (): ProviderDescription => provider.describe(),
    async complete(request, options) {
      const description = provider.describe();
      const key = responseCacheKey({
        provider: description.type,
        baseUrl: description.base_url,
        model: request.model,
        messages: request.messages,
        params: request.params,
        seed: request.seed,
      });
      const recorded = reuse ? await store.get(key) : undefined;
      if (recorded !== undefined) {
        return { output: recorded.output, tokens: recorded.tokens, latencyMs: recorded.latencyMs, cached: true, cacheKey: key };
      }
      if (mode === 'replay') {
        const failure = await store.getFailure?.(key);
        if (failure !== undefined) throw new ProviderError(failure.error, { retryable: false });
        throw new ProviderError(
          `replay: no recorded response for this case (provider ${description.type}, model ${request.model}, ` +
            `seed ${request.seed}, key ${key.slice(0, 12)}); run it once in live mode to record it`,
          { retryable: false },
        );
      }
      let result: CompletionResult;
      try {
        result = await provider.complete(request, options);
      } catch (error) {
        // Aborts (cancellation, shutdown) say nothing about the request: only endpoint failures are kept.
        if (error instanceof ProviderError && store.putFailure !== undefined && !options?.signal?.aborted) {
          await store.putFailure(key, { error: error.message, provider: description.type, model: request.model });
        }
        throw error;
      }
      await store.put(key, { output: result.output, tokens: result.tokens, latencyMs: result.latencyMs, provider: description.type, model: request.model });
      return { ...result, cached: false, cacheKey: key };
    },
  };
}

/** A `ResponseStore` in a Map, for tests and one-off runs. */
export class MemoryResponseStore implements ResponseStore {
  readonly entries = new Map<string, RecordedResponse>();

  async get(key: string): Promise<RecordedResponse | undefined> {
    return this.entries.get(key);
  }

  async put(key: string, response: RecordedResponse): Promise<void> {
    this.entries.set(key, response);
  }
}
