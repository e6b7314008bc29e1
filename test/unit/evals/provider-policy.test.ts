import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.ts';
import { createProvider, parseProviderConfig } from '../../../src/evals/providers/provider-factory.ts';
import { createNodeHttpFetch } from '../../../src/evals/providers/node-http-fetch.ts';
import { ProviderError } from '../../../src/evals/providers/provider.ts';
import { assertSpecAllowed, isReservedVariable, ProviderNotAllowedError, providerPolicyFromConfig } from '../../../src/evals/providers/provider-policy.ts';
import { parseEvaluationRequest } from '../../../src/evals/evaluation-spec.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../../helpers/fake-openai-server.ts';

const policy = (env: Record<string, string>) => providerPolicyFromConfig(loadConfig(env));
const hostAllowed = (env: Record<string, string>, url: string) => policy(env).hostRefusal(url, 'provider.base_url') === null;
const envAllowed = (env: Record<string, string>, name: string) => policy(env).envRefusal(name, 'provider.api_key_env') === null;

describe('PROVIDER_ENV_ALLOWLIST', () => {
  it("never lets a provider read evalops' own settings, whatever the list says", () => {
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'METRICS_TOKEN', 'MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'EVALOPS_API_KEY', 'EVALOPS_ANYTHING_TOKEN', 'PGPASSWORD', 'PROVIDER_ENV_ALLOWLIST', 'database_url']) {
      expect(isReservedVariable(name), name).toBe(true);
      expect(envAllowed({}, name), name).toBe(false);
      expect(envAllowed({ PROVIDER_ENV_ALLOWLIST: `${name},*` }, name), name).toBe(false);
    }
    expect(policy({ PROVIDER_ENV_ALLOWLIST: '*' }).envRefusal('METRICS_TOKEN', 'provider.api_key_env')).toBe(
      "provider.api_key_env: the environment variable METRICS_TOKEN is one of evalops' own settings, which providers may never read (whatever PROVIDER_ENV_ALLOWLIST says); give the provider a variable of its own, e.g. OPENAI_API_KEY",
    );
  });

  it('defaults to names ending in _API_KEY or _TOKEN, and a set list replaces the default', () => {
    expect(envAllowed({}, 'OPENAI_API_KEY')).toBe(true);
    expect(envAllowed({}, 'HF_TOKEN')).toBe(true);
    for (const name of ['HOME', 'AWS_SECRET_ACCESS_KEY', 'OPENAI_API_KEY_OLD', 'PATH']) expect(envAllowed({}, name), name).toBe(false);
    expect(policy({}).envRefusal('HOME', 'provider.headers.x')).toBe(
      'provider.headers.x: providers may not read the environment variable HOME: with PROVIDER_ENV_ALLOWLIST unset only names ending in _API_KEY or _TOKEN are readable; add HOME to PROVIDER_ENV_ALLOWLIST to allow it',
    );
    const listed = { PROVIDER_ENV_ALLOWLIST: 'OPENAI_API_KEY, VLLM_*' };
    expect(envAllowed(listed, 'OPENAI_API_KEY')).toBe(true);
    expect(envAllowed(listed, 'VLLM_KEY')).toBe(true);
    expect(envAllowed(listed, 'ANTHROPIC_API_KEY')).toBe(false);
    expect(envAllowed(listed, 'XVLLM_KEY')).toBe(false);
  });

  it('refuses a malformed list at start, naming it', () => {
    expect(() => loadConfig({ PROVIDER_ENV_ALLOWLIST: 'OK_KEY,bad-name' })).toThrow(/PROVIDER_ENV_ALLOWLIST: accepts comma-separated variable names .*"bad-name"/);
  });
});

describe('PROVIDER_ALLOWED_HOSTS', () => {
  it('allows any host while HOST is loopback and the list is unset, none beyond loopback', () => {
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) expect(hostAllowed({ HOST: host }, 'https://anything.example/v1'), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'evalops.example.com']) {
      expect(hostAllowed({ HOST: host }, 'http://127.0.0.1:8000/v1'), host).toBe(false);
      expect(hostAllowed({ HOST: host }, 'https://api.openai.com/v1'), host).toBe(false);
    }
    expect(policy({ HOST: '0.0.0.0' }).hostRefusal('http://user:pw@127.0.0.1:8000/v1', 'provider.base_url')).toBe(
      'provider.base_url: providers may not call host 127.0.0.1:8000: the server listens beyond loopback (HOST=0.0.0.0), where providers may call only the hosts named in PROVIDER_ALLOWED_HOSTS, which is unset; add 127.0.0.1:8000 to PROVIDER_ALLOWED_HOSTS to allow it',
    );
  });

  it('compares the parsed hostname and port, not the text: user-info, case, trailing dots, IP spellings, brackets', () => {
    const env = { HOST: '0.0.0.0', PROVIDER_ALLOWED_HOSTS: 'api.openai.com,127.0.0.1:8000,[::1]:11434,*.models.example' };
    const allowed = [
      'https://api.openai.com/v1',
      'https://API.OpenAI.com./v1',
      'https://api.openai.com:8443/v1',
      'http://127.0.0.1:8000/v1',
      'http://2130706433:8000/v1',
      'http://0x7f.0.0.1:8000/v1',
      'http://[::1]:11434/v1',
      'http://[0:0:0:0:0:0:0:1]:11434/v1',
      'https://a.models.example/v1',
      'https://b.a.models.example/v1',
      'https://api.openai.com@api.openai.com/v1',
    ];
    const refused = [
      'https://api.openai.com@evil.example/v1',
      'https://api.openai.com:443@evil.example/v1',
      'https://api.openai.com.evil.example/v1',
      'https://evil.example/api.openai.com',
      'https://evil.example/?host=api.openai.com',
      'https://evilapi.openai.com/v1',
      'http://127.0.0.1:8001/v1',
      'http://127.0.0.1/v1',
      'http://localhost:8000/v1',
      'http://127.0.0.2:8000/v1',
      'http://[::1]:8000/v1',
      'http://[::ffff:127.0.0.1]:8000/v1',
      'https://models.example/v1',
      'https://xmodels.example/v1',
      'http://0.0.0.0:8000/v1',
    ];
    for (const url of allowed) expect(hostAllowed(env, url), url).toBe(true);
    for (const url of refused) expect(hostAllowed(env, url), url).toBe(false);
    expect(policy(env).hostRefusal('https://api.openai.com@evil.example/v1', 'provider.base_url')).toBe(
      'provider.base_url: providers may not call host evil.example: it is not in PROVIDER_ALLOWED_HOSTS (api.openai.com,127.0.0.1:8000,[::1]:11434,*.models.example); add it there to allow it',
    );
  });

  it('applies a set list on loopback too, and * admits every host', () => {
    expect(hostAllowed({ PROVIDER_ALLOWED_HOSTS: 'api.openai.com' }, 'http://127.0.0.1:9/v1')).toBe(false);
    expect(hostAllowed({ HOST: '0.0.0.0', PROVIDER_ALLOWED_HOSTS: '*' }, 'http://10.1.2.3:9/v1')).toBe(true);
  });

  it('refuses a malformed list at start, naming the entries', () => {
    for (const bad of ['http://api.openai.com', 'api.openai.com/v1', 'user@host', 'host:99999', '::1', '*.[::1]', '*example.com']) {
      expect(() => loadConfig({ PROVIDER_ALLOWED_HOSTS: bad }), bad).toThrow(/PROVIDER_ALLOWED_HOSTS: accepts comma-separated host names/);
    }
  });
});

describe('a spec is checked whole: the run provider and every inline llm_judge provider', () => {
  it('names every refused variable and host in one 422', () => {
    const spec = parseEvaluationRequest({
      prompt_version: 'p@1',
      data_snapshot_id: 'sha256:x',
      provider: { type: 'openai', base_url: 'http://10.0.0.1/v1', api_key_env: 'DATABASE_URL' },
      model: 'm',
      scorers: [
        { name: 'exact', type: 'exact' },
        { name: 'judge', type: 'llm_judge', model: 'm', provider: { type: 'http', url: 'http://10.0.0.2/x', body_template: {}, response_path: 'a', headers: { authorization: 'Bearer {{env.METRICS_TOKEN}}' } } },
      ],
    });
    const error = (() => {
      try {
        assertSpecAllowed(policy({ HOST: '0.0.0.0', PROVIDER_ALLOWED_HOSTS: 'api.openai.com' }), spec);
      } catch (err) {
        return err as ProviderNotAllowedError;
      }
      throw new Error('not refused');
    })();
    expect(error).toBeInstanceOf(ProviderNotAllowedError);
    expect(error.status).toBe(422);
    expect(error.code).toBe('NOT_ALLOWED');
    expect(error.problems).toEqual([
      expect.stringMatching(/^provider\.api_key_env: the environment variable DATABASE_URL is one of evalops' own settings/),
      expect.stringMatching(/^provider\.base_url: providers may not call host 10\.0\.0\.1: it is not in PROVIDER_ALLOWED_HOSTS/),
      expect.stringMatching(/^scorers\.1\.provider\.headers\.authorization: the environment variable METRICS_TOKEN/),
      expect.stringMatching(/^scorers\.1\.provider\.url: providers may not call host 10\.0\.0\.2/),
    ]);
  });

  it('refuses at build time too, before reading anything (the worker side)', () => {
    const config = parseProviderConfig({ type: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key_env: 'MLFLOW_TRACKING_TOKEN' });
    let read = false;
    const env = new Proxy({}, { get: () => ((read = true), 'secret') });
    expect(() => createProvider(config, { env, policy: policy({}) })).toThrow(ProviderNotAllowedError);
    expect(read).toBe(false);
  });
});

describe('redirects from a provider', () => {
  let first: FakeOpenAIServer;
  let second: FakeOpenAIServer;

  beforeAll(async () => {
    first = await startFakeOpenAIServer({});
    second = await startFakeOpenAIServer({});
  });
  afterAll(async () => {
    await first.close();
    await second.close();
  });
  beforeEach(() => {
    first.requests.length = 0;
    second.requests.length = 0;
  });

  const request = { messages: [{ role: 'user' as const, content: 'hi' }], model: 'm', params: {}, seed: 1 };
  const port = (s: FakeOpenAIServer) => new URL(s.url).port;

  for (const [name, fetchImpl] of [['fetch (undici)', fetch], ['the node:http client', createNodeHttpFetch()]] as const) {
    it(`are errors, never followed, naming a refused target (${name})`, async () => {
      const env = { HOST: '0.0.0.0', PROVIDER_ALLOWED_HOSTS: `127.0.0.1:${port(first)}` };
      for (const status of [301, 302, 303, 307, 308]) {
        first.script({ status, headers: { location: `${second.url}/chat/completions?api_key=leak` } });
        const provider = createProvider(parseProviderConfig({ type: 'openai', base_url: first.url, max_attempts: 3 }), { policy: policy(env), fetch: fetchImpl });
        const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
        expect(second.requests, `${status}: the redirect target was called`).toHaveLength(0);
        expect(error, String(status)).toBeInstanceOf(ProviderError);
        expect(error.retryable).toBe(false);
        expect(error.message).toContain(`HTTP ${status} redirects to http://127.0.0.1:${port(second)}/v1/chat/completions?api_key=***`);
        expect(error.message).toContain('not followed');
        expect(error.message).toContain(`providers may not call host 127.0.0.1:${port(second)}: it is not in PROVIDER_ALLOWED_HOSTS`);
      }
      expect(first.requests).toHaveLength(5);
      expect(second.requests).toHaveLength(0);
    });
  }

  it('does not follow a redirect to an allowed host either: the URL to use is the final one', async () => {
    first.script({ status: 307, headers: { location: '/v1/chat/completions-moved' } });
    const provider = createProvider(parseProviderConfig({ type: 'openai', base_url: first.url }), { policy: policy({}), fetch });
    const error = (await provider.complete(request).catch((e: unknown) => e)) as ProviderError;
    expect(error.message).toMatch(/HTTP 307 redirects to http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions-moved; provider redirects are not followed: set the provider's URL to the final address$/);
    expect(first.requests).toHaveLength(1);
  });
});
