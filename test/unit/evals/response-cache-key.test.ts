import { describe, expect, it } from 'vitest';
import { responseCacheKey, type ResponseCacheKeyInput } from '../../../src/evals/response-cache-key.ts';

const base: ResponseCacheKeyInput = {
  provider: 'openai',
  baseUrl: 'http://127.0.0.1:8000/v1',
  model: 'gpt-test',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ],
  params: { temperature: 0, max_tokens: 16, stop: ['\n'] },
  seed: 42,
};

describe('responseCacheKey', () => {
  it('is a stable hex SHA-256', () => {
    const key = responseCacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(responseCacheKey(structuredClone(base))).toBe(key);
  });

  it('keeps this exact value (a change invalidates every recorded response)', () => {
    const key = responseCacheKey({
      provider: 'openai',
      baseUrl: 'http://127.0.0.1:8000/v1',
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'Hi' }],
      params: { temperature: 0 },
      seed: 42,
    });
    expect(key).toBe('829e4e94b26a30493e967872d91fb2ee293cf8fa0ac1054ef01c3154d7e14394');
  });

  it('does not depend on key order in params', () => {
    const reordered = { ...base, params: { stop: ['\n'], max_tokens: 16, temperature: 0 } };
    expect(responseCacheKey(reordered)).toBe(responseCacheKey(base));
  });

  it('changes when any input changes', () => {
    const variants: ResponseCacheKeyInput[] = [
      { ...base, provider: 'http' },
      { ...base, baseUrl: 'http://127.0.0.1:8001/v1' },
      { ...base, baseUrl: null },
      { ...base, model: 'gpt-test-2' },
      { ...base, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }] },
      { ...base, messages: [{ role: 'user', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] },
      { ...base, messages: [...base.messages].reverse() },
      { ...base, params: { ...base.params, temperature: 0.1 } },
      { ...base, params: { ...base.params, top_p: 1 } },
      { ...base, seed: 43 },
    ];
    const keys = new Set([responseCacheKey(base), ...variants.map(responseCacheKey)]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it('ignores credentials in the URL and a trailing slash (the key is never an input)', () => {
    const key = responseCacheKey(base);
    expect(responseCacheKey({ ...base, baseUrl: 'http://user:secret@127.0.0.1:8000/v1/' })).toBe(key);
  });
});
