import { sleep as realSleep, type Sleep } from '../http-retry.ts';
import type { CompleteOptions, CompletionRequest, CompletionResult, Provider, ProviderDescription } from './provider.ts';

/**
 * The built-in `echo` provider, for demos, smoke tests and benchmarks of evalops itself: it answers
 * with the content of the last `user` message (empty when there is none), so a prompt like
 * `{{answer}}` scores perfectly against `expected: answer`. It never calls the network, ignores
 * model, params and seed, and always gives the same answer to the same request. Token counts are
 * whitespace-separated word counts, not a real tokenizer. It is not a model: do not read quality
 * into its scores.
 */

export interface EchoProviderOptions {
  /** Simulated latency per request, to exercise concurrency. @defaultValue 0 */
  delayMs?: number;
}

export class EchoProvider implements Provider {
  readonly type = 'echo';
  readonly #delayMs: number;
  readonly #sleep: Sleep;

  constructor(options: EchoProviderOptions = {}, deps: { sleep?: Sleep } = {}) {
    this.#delayMs = options.delayMs ?? 0;
    this.#sleep = deps.sleep ?? realSleep;
  }

  /** `{type: 'echo', base_url: null}`: it has no endpoint. */
  describe(): ProviderDescription {
    return { type: this.type, base_url: null };
  }

  /** Returns the last user message's content. */
  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    if (this.#delayMs > 0) await this.#sleep(this.#delayMs, options.signal);
    else if (options.signal?.aborted) throw options.signal.reason;
    const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
    const output = lastUser?.content ?? '';
    const prompt = request.messages.reduce((sum, m) => sum + countWords(m.content), 0);
    const completion = countWords(output);
    return {
      output,
      tokens: { prompt, completion, total: prompt + completion },
      // Reported as the configured delay, not measured: echo results must be identical run to run.
      latencyMs: this.#delayMs,
      attempts: 1,
    };
  }
}

function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}
