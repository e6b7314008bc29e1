import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvalValidationError } from '../../../src/evals/eval-errors.ts';
import { EchoProvider } from '../../../src/evals/providers/echo-provider.ts';
import { HttpProvider, readPath, renderBodyTemplate } from '../../../src/evals/providers/http-provider.ts';
import { createProvider, parseProviderConfig } from '../../../src/evals/providers/provider-factory.ts';
import { OpenAIProvider } from '../../../src/evals/providers/openai-provider.ts';
import { ProviderError, redactUrl, scrubSecrets } from '../../../src/evals/providers/provider.ts';
import { MemoryResponseStore, withResponseCache } from '../../../src/evals/response-cache.ts';
import { start, type FakeOpenAIServer } from '../../helpers/fake-openai-server.ts';

const request = {
  messages: [
    { role: 'system' as const, content: 'sys' },
    { role: 'user' as const, content: 'first question' },
    { role: 'assistant' as const, content: 'answer' },
    { role: 'user' as const, content: 'the last one' },
  ],
  model: 'm',
  params: { temperature: 0.2 },
  seed: 7,
};

let server: FakeOpenAIServer;
beforeAll(async () => {
  server = await start();
});
afterAll(async () => {
  await server.close();
});

describe('EchoProvider', () => {
  it('answers with the last user message, deterministically', async () => {
    const echo = new EchoProvider();
    const a = await echo.complete(request);
    const b = await echo.complete({ ...request, seed: 99, model: 'other' });
    expect(a).toEqual({ output: 'the last one', tokens: { prompt: 7, completion: 3, total: 10 }, latencyMs: 0, attempts: 1 });
    expect(b).toEqual(a);
    expect(echo.describe()).toEqual({ type: 'echo', base_url: null });
    expect((await echo.complete({ ...request, messages: [{ role: 'system', content: 'x' }] })).output).toBe('');
  });
});

describe('http provider', () => {
  it('renders the body template keeping types for whole placeholders', () => {
    const body = renderBodyTemplate(
      { input: '{{prompt}}', chat: '{{messages}}', opts: { seed: '{{seed}}', t: '{{params.temperature}}', label: 'model={{model}}' }, fixed: [1, true] },
      { prompt: 'p', messages: [{ role: 'user', content: 'c' }], seed: 7, model: 'm', params: { temperature: 0.2 } },
    );
    expect(body).toEqual({ input: 'p', chat: [{ role: 'user', content: 'c' }], opts: { seed: 7, t: 0.2, label: 'model=m' }, fixed: [1, true] });
  });

  it('reads response paths', () => {
    const json = { data: { choices: [{ text: 'hi' }] } };
    expect(readPath(json, 'data.choices.0.text')).toEqual({ found: true, value: 'hi' });
    expect(readPath(json, '$.data.choices.0.text')).toEqual({ found: true, value: 'hi' });
    expect(readPath(json, 'data.choices.1.text')).toEqual({ found: false, failedAt: 'data.choices.1' });
  });

  it('refuses unknown template variables at construction', () => {
    expect(() => new HttpProvider({ url: 'http://127.0.0.1:1/x', bodyTemplate: { q: '{{question}}' }, responsePath: 'a' })).toThrow(
      EvalValidationError,
    );
  });

  it('POSTs the rendered template to a real endpoint and extracts the output', async () => {
    const provider = new HttpProvider({
      url: `${server.url}/chat/completions`,
      headers: { 'x-team': 'evals' },
      bodyTemplate: { model: '{{model}}', messages: '{{messages}}', seed: '{{seed}}' },
      responsePath: 'choices.0.message.content',
      usagePath: 'usage',
    });
    const before = server.requests.length;
    const result = await provider.complete(request);
    expect(result.output).toBe('echo: the last one');
    expect(result.tokens?.completion).toBe(4);
    const sent = server.requests[before];
    expect(sent?.headers['x-team']).toBe('evals');
    expect(sent?.body).toEqual({ model: 'm', messages: request.messages, seed: 7 });
  });

  it('fails without retry when the path is missing from the answer', async () => {
    const provider = new HttpProvider({
      url: `${server.url}/chat/completions`,
      bodyTemplate: { model: '{{model}}', messages: '{{messages}}' },
      responsePath: 'data.text',
    });
    const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/no value at 'data\.text' \(nothing at 'data'\)/);
  });
});

describe('provider factory', () => {
  it('builds each type from its config', () => {
    expect(createProvider(parseProviderConfig({ type: 'echo' }))).toBeInstanceOf(EchoProvider);
    const openai = createProvider(parseProviderConfig({ type: 'openai', base_url: server.url, api_key_env: 'MY_API_KEY' }), {
      env: { MY_API_KEY: 'sk-abcdefghijkl' },
    });
    expect(openai).toBeInstanceOf(OpenAIProvider);
    expect(openai.describe()).toEqual({ type: 'openai', base_url: server.url });
    const http = createProvider(
      parseProviderConfig({ type: 'http', url: 'http://127.0.0.1:1/x', body_template: { p: '{{prompt}}' }, response_path: 'out', headers: { authorization: 'Bearer {{env.SERVICE_TOKEN}}' } }),
      { env: { SERVICE_TOKEN: 't0ken-value' } },
    );
    expect(http).toBeInstanceOf(HttpProvider);
  });

  it('defaults the OpenAI base URL', () => {
    expect(parseProviderConfig({ type: 'openai' })).toMatchObject({ base_url: 'https://api.openai.com/v1' });
  });

  it('names the invalid fields', () => {
    const problemsOf = (value: unknown): readonly string[] => {
      try {
        parseProviderConfig(value);
      } catch (error) {
        return (error as EvalValidationError).problems;
      }
      return [];
    };
    expect(problemsOf({ type: 'openai', base_url: 'ftp://x', max_attempts: 0, api_key: 'inline' })).toEqual([
      'provider.base_url: Invalid URL',
      expect.stringMatching(/^provider\.max_attempts: Too small/),
      'provider: Unrecognized key: "api_key"',
    ]);
    expect(problemsOf({ type: 'nope' })).toEqual([expect.stringMatching(/^provider\.type: Invalid discriminator value/)]);
  });

  it('says which environment variable is missing, never a value', () => {
    expect(() => createProvider(parseProviderConfig({ type: 'openai', api_key_env: 'ABSENT_API_KEY' }), { env: {} })).toThrow(
      'provider.api_key_env: environment variable ABSENT_API_KEY is not set (it should hold the API key)',
    );
    expect(() =>
      createProvider(parseProviderConfig({ type: 'http', url: 'http://h/x', body_template: {}, response_path: 'a', headers: { 'x-key': '{{env.NOPE_TOKEN}}' } }), {
        env: {},
      }),
    ).toThrow('provider.headers.x-key: environment variable NOPE_TOKEN is not set');
  });
});

describe('response cache (live / replay)', () => {
  it('records live answers, reuses them, and replays without calling the provider', async () => {
    let calls = 0;
    const inner = new EchoProvider();
    const counting = { type: inner.type, describe: () => inner.describe(), complete: async (r: typeof request) => (calls++, inner.complete(r)) };
    const store = new MemoryResponseStore();
    const live = withResponseCache(counting, store, 'live');
    const first = await live.complete(request);
    const second = await live.complete(request);
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect(second.output).toBe(first.output);
    expect(calls).toBe(1);
    const replay = withResponseCache(counting, store, 'replay');
    expect((await replay.complete(request)).output).toBe('the last one');
    expect(calls).toBe(1);
    const miss = (await replay.complete({ ...request, seed: 8 }).catch((e: unknown) => e)) as ProviderError;
    expect(miss).toBeInstanceOf(ProviderError);
    expect(miss.retryable).toBe(false);
    expect(miss.message).toMatch(/^replay: no recorded response for this case \(provider echo, model m, seed 8, key [0-9a-f]{12}\)/);
    expect(calls).toBe(1);
    const fresh = withResponseCache(counting, store, 'live', { reuseInLive: false });
    expect((await fresh.complete(request)).cached).toBe(false);
    expect(calls).toBe(2);
  });
});

describe('redaction helpers', () => {
  it('strips URL credentials and key-like query values', () => {
    expect(redactUrl('https://user:pw@host:8080/v1?api_key=abc&x=1')).toBe('https://user:***@host:8080/v1?api_key=***&x=1');
    expect(redactUrl('not a url //u:p@h')).toBe('not a url //***@h');
  });
  it('scrubs given secrets and sk- keys', () => {
    expect(scrubSecrets('key sk-live-ABCDEFGHIJ and s3cr3t!', ['s3cr3t!'])).toBe('key sk-[REDACTED] and [REDACTED]');
  });
});
