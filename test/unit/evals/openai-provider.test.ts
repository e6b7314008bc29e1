import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIProvider } from '../../../src/evals/providers/openai-provider.ts';
import { ProviderError } from '../../../src/evals/providers/provider.ts';
import { start, type FakeOpenAIServer } from '../../helpers/fake-openai-server.ts';

const KEY = 'sk-test-0123456789abcdefSECRET';
const request = {
  messages: [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'What is 2+2?' },
  ],
  model: 'gpt-test',
  params: { temperature: 0, max_tokens: 16 },
  seed: 1234,
};

/** Records the waits the provider asks for and returns at once: no test waits on a real clock. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

let server: FakeOpenAIServer;

beforeAll(async () => {
  server = await start({ apiKey: KEY });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

describe('OpenAIProvider', () => {
  it('sends a Chat Completions request with model, messages, params, seed and the key', async () => {
    const provider = new OpenAIProvider({ baseUrl: `${server.url}/`, apiKey: KEY });
    const result = await provider.complete(request);
    expect(result.output).toBe('echo: What is 2+2?');
    expect(result.tokens).toEqual({ prompt: 5, completion: 4, total: 9 });
    expect(result.attempts).toBe(1);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.requests).toHaveLength(1);
    const sent = server.requests[0];
    expect(sent?.path).toBe('/v1/chat/completions');
    expect(sent?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent?.body).toEqual({ ...request.params, model: 'gpt-test', messages: request.messages, seed: 1234, stream: false });
  });

  it('retries a 429 honouring Retry-After (seconds), then succeeds', async () => {
    server.script({ status: 429, retryAfter: '2' });
    const { sleep, waits } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY }, { sleep, random: () => 0.5 });
    const result = await provider.complete(request);
    expect(result.output).toBe('echo: What is 2+2?');
    expect(result.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
    // 2 s asked, plus at most 10% jitter (random fixed at 0.5 -> 5%).
    expect(waits).toEqual([2100]);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    server.script({ status: 429, retryAfter: at });
    const { sleep, waits } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY }, { sleep, random: () => 0 });
    await provider.complete(request);
    expect(waits).toHaveLength(1);
    // HTTP dates have one-second resolution: the wait is the remaining time, between 28 and 30 s.
    expect(waits[0]).toBeGreaterThan(28_000);
    expect(waits[0]).toBeLessThanOrEqual(30_000);
  });

  it('retries 5xx with jittered exponential backoff and reports each retry', async () => {
    server.script({ status: 500 }, { status: 503 }, { status: 502 });
    const { sleep, waits } = recordingSleep();
    const infos: Array<{ attempt: number; status: number | null }> = [];
    const provider = new OpenAIProvider(
      { baseUrl: server.url, apiKey: KEY, backoff: { baseMs: 100, maxMs: 1000 } },
      { sleep, random: () => 1, onRetry: (info) => infos.push({ attempt: info.attempt, status: info.status }) },
    );
    const result = await provider.complete(request);
    expect(result.attempts).toBe(4);
    // equal jitter with random() = 1: the full ceiling 100, 200, 400
    expect(waits).toEqual([100, 200, 400]);
    expect(infos).toEqual([
      { attempt: 1, status: 500 },
      { attempt: 2, status: 503 },
      { attempt: 3, status: 502 },
    ]);
  });

  it('gives up after max attempts with a retryable error', async () => {
    server.script({ status: 429, retryAfter: '1' }, { status: 429, retryAfter: '1' }, { status: 429, retryAfter: '1' });
    const { sleep, waits } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY, maxAttempts: 3 }, { sleep });
    const error = await provider.complete(request).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    const failure = error as ProviderError;
    expect(failure.retryable).toBe(true);
    expect(failure.code).toBe('UNAVAILABLE');
    expect(failure.upstreamStatus).toBe(429);
    expect(failure.retryAfterMs).toBe(1000);
    expect(failure.message).toMatch(/gave up after 3 attempts: .*HTTP 429/);
    expect(server.requests).toHaveLength(3);
    expect(waits).toHaveLength(2);
  });

  it('refuses to wait out a Retry-After longer than allowed', async () => {
    server.script({ status: 429, retryAfter: '3600' });
    const { sleep, waits } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY, maxRetryAfterMs: 60_000 }, { sleep });
    await expect(provider.complete(request)).rejects.toThrow(/asked to wait 3600 s \(Retry-After\), longer than the 60 s allowed/);
    expect(waits).toEqual([]);
  });

  it('does not retry a 400 and puts the endpoint message in the error', async () => {
    server.script({ status: 400, body: { error: { message: "Unsupported parameter: 'foo'" } } });
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY });
    const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
    expect(error.retryable).toBe(false);
    expect(error.upstreamStatus).toBe(400);
    expect(error.message).toContain("HTTP 400: Unsupported parameter: 'foo'");
    expect(server.requests).toHaveLength(1);
  });

  it('never puts the API key in errors, even when the server echoes it', async () => {
    const wrongKey = 'sk-wrong-key-abcdefghijklmnop';
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: wrongKey });
    const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.upstreamStatus).toBe(401);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/HTTP 401 \(the credentials were refused/);
    const everything = `${error.message} ${error.stack ?? ''} ${JSON.stringify(error)}`;
    expect(everything).not.toContain(wrongKey);
    expect(everything).not.toContain('abcdefghijklmnop');
    expect(JSON.stringify(provider)).not.toContain(wrongKey);
    expect(provider.describe()).toEqual({ type: 'openai', base_url: server.url });
  });

  it('times out a hanging request and retries it', async () => {
    server.script('hang');
    const { sleep } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY, timeoutMs: 200 }, { sleep });
    const result = await provider.complete(request);
    expect(result.attempts).toBe(2);
  });

  it('reports an unreachable endpoint as retryable, naming the URL without credentials', async () => {
    const { sleep } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: 'http://user:hunter2@127.0.0.1:9/v1', apiKey: KEY, maxAttempts: 2 }, { sleep });
    const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
    expect(error.retryable).toBe(true);
    expect(error.upstreamStatus).toBeNull();
    expect(error.message).toMatch(/openai provider at http:\/\/user:\*\*\*@127\.0\.0\.1:9\/v1: gave up after 2 attempts: .*could not reach the endpoint/);
    expect(error.message).not.toContain('hunter2');
    expect(provider.describe().base_url).toBe('http://user:***@127.0.0.1:9/v1');
  });

  it('stops when the caller aborts, without wrapping the abort', async () => {
    server.script('hang');
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY, timeoutMs: 10_000 });
    const controller = new AbortController();
    const pending = provider.complete(request, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('run cancelled')), 20);
    await expect(pending).rejects.toThrow('run cancelled');
  });

  it('halves its concurrency limit on a 429', async () => {
    server.script({ status: 429, retryAfter: '0' });
    const { sleep } = recordingSleep();
    const provider = new OpenAIProvider({ baseUrl: server.url, apiKey: KEY, maxConcurrency: 8 }, { sleep });
    expect(provider.limiter.limit).toBe(8);
    const result = await provider.complete(request);
    expect(result.attempts).toBe(2);
    // 8 -> 4 on the 429, then +1 on the success
    expect(provider.limiter.limit).toBe(5);
  });
});
