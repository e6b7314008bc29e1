import { z } from 'zod';
import { EvalValidationError, formatZodIssues } from '../eval-errors.ts';
import { EchoProvider } from './echo-provider.ts';
import { HttpProvider } from './http-provider.ts';
import { OpenAIProvider } from './openai-provider.ts';
import type { Provider } from './provider.ts';
import { DEFAULT_PROVIDER_POLICY, HEADER_ENV_TEMPLATE, ProviderNotAllowedError, type ProviderPolicy, providerProblems } from './provider-policy.ts';
import type { RetryingPostDeps } from './retrying-post.ts';

/**
 * Provider configuration as users write it (API bodies, YAML files): snake_case, validated with zod,
 * secrets only ever named (an environment variable), never given inline.
 */

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

const retryFields = {
  /** Per-attempt timeout in ms. @defaultValue 60_000 */
  timeout_ms: z.number().int().min(1).max(3_600_000).optional(),
  /** Attempts in total, the first included. @defaultValue 5 */
  max_attempts: z.number().int().min(1).max(20).optional(),
  backoff_base_ms: z.number().int().min(0).max(600_000).optional(),
  backoff_max_ms: z.number().int().min(0).max(3_600_000).optional(),
  /** A longer Retry-After fails the call instead of stalling the run. @defaultValue 120_000 */
  max_retry_after_ms: z.number().int().min(0).max(3_600_000).optional(),
  /** Upper bound of concurrent requests to this provider. @defaultValue 8 */
  max_concurrency: z.number().int().min(1).max(1000).optional(),
  /**
   * Shared request-rate limit of this endpoint, held across every run and process (in Redis when
   * REDIS_URL is set); applied by the evaluation runner through a RequestGate. @defaultValue no limit
   */
  requests_per_minute: z.number().int().min(1).max(1_000_000).optional(),
};

/** Header values may reference the environment as `{{env.NAME}}`; that is how secrets reach headers. */
const headersSchema = z.record(z.string(), z.string()).optional();

export const openaiProviderConfigSchema = z.strictObject({
  type: z.literal('openai'),
  base_url: z.url({ protocol: /^https?$/ }).default('https://api.openai.com/v1'),
  /** Name of the environment variable holding the API key; omit for servers that need none (vLLM, Ollama). */
  api_key_env: envVarName.optional(),
  headers: headersSchema,
  ...retryFields,
});

export const httpProviderConfigSchema = z.strictObject({
  type: z.literal('http'),
  url: z.url({ protocol: /^https?$/ }),
  headers: headersSchema,
  body_template: z.json(),
  response_path: z.string().min(1),
  usage_path: z.string().min(1).optional(),
  ...retryFields,
});

export const echoProviderConfigSchema = z.strictObject({
  type: z.literal('echo'),
  delay_ms: z.number().int().min(0).max(60_000).optional(),
});

export const providerConfigSchema = z.discriminatedUnion('type', [
  openaiProviderConfigSchema,
  httpProviderConfigSchema,
  echoProviderConfigSchema,
]);

export type ProviderConfig = z.infer<typeof providerConfigSchema>;
/** Input form (defaults not yet applied). */
export type ProviderConfigInput = z.input<typeof providerConfigSchema>;

export interface ProviderFactoryDeps extends Omit<RetryingPostDeps, 'limiter' | 'redirectRefusal'> {
  /** Where `api_key_env` and `{{env.NAME}}` are looked up. @defaultValue process.env */
  env?: Record<string, string | undefined>;
  /** Which variables and hosts the provider may use (checked before anything is read). @defaultValue DEFAULT_PROVIDER_POLICY */
  policy?: ProviderPolicy;
}

/** Validates a provider config; throws `EvalValidationError` naming each bad field. */
export function parseProviderConfig(value: unknown, path = 'provider'): ProviderConfig {
  const result = providerConfigSchema.safeParse(value);
  if (!result.success) {
    const details = formatZodIssues(result.error, path);
    throw new EvalValidationError(`invalid provider config: ${details.join('; ')}`, details);
  }
  return result.data;
}

/**
 * Builds the provider a (parsed) config describes; secrets are read from `deps.env` here, once,
 * after the policy has admitted every variable and the host (`path` names the config in refusals).
 */
export function createProvider(config: ProviderConfig, deps: ProviderFactoryDeps = {}, path = 'provider'): Provider {
  const env = deps.env ?? process.env;
  const policy = deps.policy ?? DEFAULT_PROVIDER_POLICY;
  const problems = providerProblems(policy, config, path);
  if (problems.length > 0) throw new ProviderNotAllowedError(problems);
  const { env: _env, policy: _policy, ...rest } = deps;
  // Redirects are never followed; a refused target is named in the error.
  const postDeps = { ...rest, redirectRefusal: (url: string) => policy.hostRefusal(url, `${path} redirect`) };
  switch (config.type) {
    case 'openai': {
      let apiKey: string | undefined;
      if (config.api_key_env !== undefined) {
        apiKey = env[config.api_key_env];
        if (apiKey === undefined || apiKey === '') {
          throw new EvalValidationError(
            `${path}.api_key_env: environment variable ${config.api_key_env} is not set (it should hold the API key)`,
          );
        }
      }
      return new OpenAIProvider(
        {
          baseUrl: config.base_url,
          apiKey,
          headers: resolveHeaders(config.headers, env, path),
          ...retryOptions(config),
        },
        postDeps,
      );
    }
    case 'http':
      return new HttpProvider(
        {
          url: config.url,
          headers: resolveHeaders(config.headers, env, path),
          bodyTemplate: config.body_template,
          responsePath: config.response_path,
          usagePath: config.usage_path,
          ...retryOptions(config),
        },
        postDeps,
      );
    case 'echo':
      return new EchoProvider({ delayMs: config.delay_ms }, { sleep: deps.sleep });
  }
}

function retryOptions(config: {
  timeout_ms?: number;
  max_attempts?: number;
  backoff_base_ms?: number;
  backoff_max_ms?: number;
  max_retry_after_ms?: number;
  max_concurrency?: number;
}) {
  return {
    timeoutMs: config.timeout_ms,
    maxAttempts: config.max_attempts,
    backoff: { baseMs: config.backoff_base_ms, maxMs: config.backoff_max_ms },
    maxRetryAfterMs: config.max_retry_after_ms,
    maxConcurrency: config.max_concurrency,
  };
}

function resolveHeaders(
  headers: Record<string, string> | undefined,
  env: Record<string, string | undefined>,
  path: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, template] of Object.entries(headers ?? {})) {
    out[name] = template.replace(HEADER_ENV_TEMPLATE, (_m, variable: string) => {
      const value = env[variable];
      if (value === undefined || value === '') {
        throw new EvalValidationError(
          `${path}.headers.${name}: environment variable ${variable} is not set`,
        );
      }
      return value;
    });
  }
  return out;
}
