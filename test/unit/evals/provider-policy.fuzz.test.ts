import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../../src/config/config.ts';
import { parseEvaluationRequest } from '../../../src/evals/evaluation-spec.ts';
import { createProvider, type ProviderConfig } from '../../../src/evals/providers/provider-factory.ts';
import { assertSpecAllowed, ProviderNotAllowedError, providerPolicyFromConfig } from '../../../src/evals/providers/provider-policy.ts';

/**
 * Properties over the provider fields of an evaluation spec (the run's provider and an inline
 * `llm_judge` provider): whatever a caller writes in `base_url` / `url`, `api_key_env` and header
 * templates, the process reads no environment variable the policy does not allow (never one of
 * evalops' own) and sends no request to a host the policy does not allow; and the check at
 * submission and the one where the provider is built agree.
 *
 * The generated hosts are not ours to call, so requests go to a recording fetch that answers at
 * once, and the environment is a recording object: nothing leaves this process. The oracle is
 * written independently of the policy's code: the host is read back from the URL actually
 * requested, and the reserved names come from the configuration module's list.
 * EVALOPS_FUZZ_RUNS sets the runs (default 300).
 */

const RUNS = Number(process.env.EVALOPS_FUZZ_RUNS ?? 300);

const ALLOWED_HOSTS = 'api.allowed.example,127.0.0.1:8000';
const oracleHostAllowed = (url: URL): boolean => {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return host === 'api.allowed.example' || (host === '127.0.0.1' && port === '8000');
};
const reserved = (name: string) => CONFIG_VARIABLES.includes(name.toUpperCase()) || /^(EVALOPS_|PG)/i.test(name);

const knownNames = ['DATABASE_URL', 'REDIS_URL', 'METRICS_TOKEN', 'MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'EVALOPS_API_KEY', 'PGPASSWORD', 'PROVIDER_ENV_ALLOWLIST', 'OPENAI_API_KEY', 'OTHER_API_KEY', 'HF_TOKEN', 'VLLM_KEY', 'HOME', 'PATH'];
const envName = fc.oneof({ arbitrary: fc.constantFrom(...knownNames), weight: 4 }, { arbitrary: fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,24}$/), weight: 1 });

const hostPart = fc.constantFrom(
  'api.allowed.example',
  'api.allowed.example',
  '127.0.0.1',
  'API.Allowed.Example.',
  'evil.example',
  'api.allowed.example.evil.example',
  'evilapi.allowed.example',
  '127.0.0.1',
  '2130706433',
  '0x7f.0.0.1',
  '127.1',
  'localhost',
  '[::1]',
  '[::ffff:127.0.0.1]',
  '10.0.0.1',
  '169.254.169.254',
);
const userinfo = fc.constantFrom('', 'api.allowed.example@', 'api.allowed.example:443@', '127.0.0.1:8000@', 'u:p@', '%40evil.example@');
const port = fc.constantFrom('', ':8000', ':443', ':80', ':8001');
const url = fc
  .tuple(fc.constantFrom('http', 'https'), userinfo, hostPart, port, fc.constantFrom('/v1', '/', '/x?api_key=1', '/@evil.example', '#@evil.example'))
  .map(([scheme, user, host, p, path]) => `${scheme}://${user}${host}${p}${path}`);

const headers = fc.dictionary(
  fc.constantFrom('x-api-key', 'authorization', 'x-extra', 'x-org'),
  fc.oneof(envName.map((n) => `{{env.${n}}}`), envName.map((n) => `Bearer {{ env.${n} }}`), fc.tuple(envName, envName).map(([a, b]) => `{{env.${a}}}:{{env.${b}}}`)),
  { maxKeys: 1 },
);

const providerConfig = fc.oneof(
  fc.record({ type: fc.constant('openai'), base_url: url, api_key_env: fc.option(envName, { nil: undefined, freq: 2 }), headers: fc.option(headers, { nil: undefined, freq: 1 }) }),
  fc.record({ type: fc.constant('http'), url, body_template: fc.constant({ p: '{{prompt}}' }), response_path: fc.constant('out'), headers: fc.option(headers, { nil: undefined, freq: 1 }) }),
);

const settings = fc.record({
  HOST: fc.constantFrom('127.0.0.1', '0.0.0.0'),
  PROVIDER_ALLOWED_HOSTS: fc.constantFrom(undefined, ALLOWED_HOSTS),
  PROVIDER_ENV_ALLOWLIST: fc.constantFrom(undefined, 'OPENAI_API_KEY,HF_*', '*', 'DATABASE_URL,METRICS_TOKEN,*_TOKEN'),
});

const strip = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** What building and calling the provider touched. */
async function exercise(config: ProviderConfig, policy: ReturnType<typeof providerPolicyFromConfig>): Promise<{ read: string[]; called: URL[]; refused: boolean }> {
  const read: string[] = [];
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (_t, name) => {
      if (typeof name === 'string') read.push(name);
      return `value-${String(name)}`;
    },
  });
  const called: URL[] = [];
  const recordingFetch = (async (input: string | URL) => {
    called.push(new URL(String(input)));
    return new Response(JSON.stringify({ out: 'ok', choices: [{ message: { content: 'ok' } }] }), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  let provider;
  try {
    provider = createProvider(config, { env, policy, fetch: recordingFetch });
  } catch (err) {
    if (err instanceof ProviderNotAllowedError) return { read, called, refused: true };
    throw err;
  }
  await provider.complete({ messages: [{ role: 'user', content: 'hi' }], model: 'm', params: {}, seed: 0 });
  return { read, called, refused: false };
}

describe('provider policy properties', () => {
  it('no generated spec makes the process read a variable or call a host the policy does not allow', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(settings, providerConfig, fc.option(providerConfig, { nil: undefined, freq: 1 }), async (env, provider, judge) => {
        const config = loadConfig(strip(env) as Record<string, string>);
        const policy = providerPolicyFromConfig(config);
        let spec;
        try {
          spec = parseEvaluationRequest({
            prompt_version: 'p@1',
            data_snapshot_id: 'sha256:x',
            provider: strip(provider),
            model: 'm',
            scorers: [{ name: 'exact', type: 'exact' }, ...(judge ? [{ name: 'judge', type: 'llm_judge', model: 'm', provider: strip(judge) }] : [])],
          });
        } catch {
          return; // refused as malformed before any policy question
        }
        let allowedAtSubmission = true;
        try {
          assertSpecAllowed(policy, spec);
        } catch (err) {
          expect(err).toBeInstanceOf(ProviderNotAllowedError);
          allowedAtSubmission = false;
        }
        const configs = [spec.provider, ...spec.scorers.flatMap((s) => (s.type === 'llm_judge' && typeof s.provider === 'object' ? [s.provider] : []))];
        const outcomes = [];
        for (const c of configs) outcomes.push(await exercise(c, policy));
        // Submission and execution agree: the spec passes only if every provider can be built.
        expect(outcomes.every((o) => !o.refused)).toBe(allowedAtSubmission);
        if (allowedAtSubmission) accepted += 1;
        else refused += 1;
        const anyHost = env.PROVIDER_ALLOWED_HOSTS === undefined && env.HOST === '127.0.0.1';
        const listed = (name: string) =>
          env.PROVIDER_ENV_ALLOWLIST === undefined ? /(_API_KEY|_TOKEN)$/.test(name) : env.PROVIDER_ENV_ALLOWLIST.split(',').some((p) => new RegExp(`^${p.replace(/\*/g, '[A-Za-z0-9_]*')}$`).test(name));
        for (const o of outcomes) {
          if (o.refused) {
            expect(o.read).toEqual([]);
            expect(o.called).toEqual([]);
            continue;
          }
          for (const name of o.read) {
            expect(reserved(name), `read ${name}`).toBe(false);
            expect(listed(name), `read ${name}`).toBe(true);
          }
          for (const target of o.called) {
            expect(target.username + target.password, `credentials left in ${target.href}`).toBe('');
            if (!anyHost) expect(oracleHostAllowed(target), `called ${target.href}`).toBe(true);
          }
        }
      }),
      { numRuns: RUNS },
    );
    process.stdout.write(`provider policy properties: ${accepted} specs allowed, ${refused} refused\n`);
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});
