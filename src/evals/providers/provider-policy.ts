import { CONFIG_VARIABLES, type Config } from '../../config/config.ts';
import { isLoopbackHost } from '../../config/loopback-host.ts';
import { envNameListed, type EnvPattern, type HostEntry, hostListed, urlTarget } from '../../config/provider-allowlists.ts';
import { AppError } from '../../errors.ts';

/**
 * What an evaluation's providers (the run's own, an `llm_judge`'s inline one) may read from the
 * environment and which hosts they may call. A spec is checked when it is submitted (a 422
 * `NOT_ALLOWED`, no run recorded) and again where the provider is built, in the process that runs
 * the job: a queue-mode worker has an environment of its own.
 *
 * Environment: evalops' own settings (every variable config.ts reads, `EVALOPS_*`, and `PG*`, which
 * the PostgreSQL driver reads) are never readable; of the rest, the names PROVIDER_ENV_ALLOWLIST
 * lists, or when it is unset those ending in `_API_KEY` or `_TOKEN`.
 * Hosts: the hosts PROVIDER_ALLOWED_HOSTS lists; when it is unset, any host while the server listens
 * on loopback and none beyond it, so a network deployment must name its model endpoints.
 * Hosts are compared by the parsed URL's hostname (lower case, no trailing dot, IPv4 canonical,
 * IPv6 bracketed) and port: never by the URL's text, so user-info (`http://allowed@evil`) and
 * spellings (`0x7f.1`, `EVIL.`) cannot pass for another host. Names are not resolved: `localhost`
 * and `127.0.0.1` are different entries.
 */

/** Refusal of a spec by the provider policy: 422 with every problem named. */
export class ProviderNotAllowedError extends AppError {
  constructor(readonly problems: readonly string[]) {
    super('NOT_ALLOWED', problems.join('; '), { problems: [...problems] });
    this.name = 'ProviderNotAllowedError';
  }
}

export interface ProviderPolicy {
  /** Null when a provider may read the variable, else the sentence naming it and the setting. */
  envRefusal(name: string, field: string): string | null;
  /** Null when a provider may call the URL's host, else the sentence naming it and the setting. */
  hostRefusal(url: string, field: string): string | null;
}

const RESERVED_PREFIXES = ['EVALOPS_', 'PG'];
const RESERVED = new Set(CONFIG_VARIABLES.map((n) => n.toUpperCase()));
const DEFAULT_SUFFIXES = ['_API_KEY', '_TOKEN'];

/** True for a variable evalops itself reads: no setting makes it readable by a provider. */
export function isReservedVariable(name: string): boolean {
  const upper = name.toUpperCase();
  return RESERVED.has(upper) || RESERVED_PREFIXES.some((p) => upper.startsWith(p));
}

/** The policy of PROVIDER_ENV_ALLOWLIST, PROVIDER_ALLOWED_HOSTS and HOST. */
export function providerPolicy(settings: { host: string; envAllowlist: readonly EnvPattern[] | undefined; allowedHosts: readonly HostEntry[] | undefined }): ProviderPolicy {
  const anyHost = settings.allowedHosts === undefined && isLoopbackHost(settings.host);
  return {
    envRefusal(name, field) {
      if (isReservedVariable(name)) {
        return `${field}: the environment variable ${name} is one of evalops' own settings, which providers may never read (whatever PROVIDER_ENV_ALLOWLIST says); give the provider a variable of its own, e.g. OPENAI_API_KEY`;
      }
      if (settings.envAllowlist === undefined) {
        if (DEFAULT_SUFFIXES.some((s) => name.endsWith(s))) return null;
        return `${field}: providers may not read the environment variable ${name}: with PROVIDER_ENV_ALLOWLIST unset only names ending in _API_KEY or _TOKEN are readable; add ${name} to PROVIDER_ENV_ALLOWLIST to allow it`;
      }
      if (envNameListed(settings.envAllowlist, name)) return null;
      return `${field}: providers may not read the environment variable ${name}: it is not in PROVIDER_ENV_ALLOWLIST (${settings.envAllowlist.map((p) => p.text).join(',')}); add it there to allow it`;
    },
    hostRefusal(url, field) {
      const target = urlTarget(url);
      if (target === null) return `${field}: not an http:// or https:// URL`;
      if (anyHost) return null;
      if (settings.allowedHosts !== undefined) {
        if (hostListed(settings.allowedHosts, target)) return null;
        return `${field}: providers may not call host ${target.shown}: it is not in PROVIDER_ALLOWED_HOSTS (${settings.allowedHosts.map((h) => h.text).join(',')}); add it there to allow it`;
      }
      return `${field}: providers may not call host ${target.shown}: the server listens beyond loopback (HOST=${settings.host}), where providers may call only the hosts named in PROVIDER_ALLOWED_HOSTS, which is unset; add ${target.shown} to PROVIDER_ALLOWED_HOSTS to allow it`;
    },
  };
}

/** The policy a process's configuration sets. */
export function providerPolicyFromConfig(config: Pick<Config, 'host' | 'providers'>): ProviderPolicy {
  return providerPolicy({ host: config.host, envAllowlist: config.providers.envAllowlist, allowedHosts: config.providers.allowedHosts });
}

/** The default policy (no allowlist settings, a loopback server): used where no configuration is given. */
export const DEFAULT_PROVIDER_POLICY: ProviderPolicy = providerPolicy({ host: '127.0.0.1', envAllowlist: undefined, allowedHosts: undefined });

/** `{{env.NAME}}` in a header value: the one way a header reads the environment (the factory substitutes it). */
export const HEADER_ENV_TEMPLATE = /\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The variables a header template reads through `{{env.NAME}}`. */
export function headerEnvNames(template: string): string[] {
  return [...template.matchAll(HEADER_ENV_TEMPLATE)].map((m) => m[1]!);
}

/** The provider fields the policy looks at, whatever the provider type. */
export interface ProviderTargets {
  url: { value: string; field: string } | null;
  env: Array<{ name: string; field: string }>;
}

/** Every variable a provider config would read and the URL it would call, with the field of each. */
export function providerTargets(config: { type: string; base_url?: string; url?: string; api_key_env?: string | undefined; headers?: Record<string, string> | undefined }, path: string): ProviderTargets {
  const env: ProviderTargets['env'] = [];
  if (config.api_key_env !== undefined) env.push({ name: config.api_key_env, field: `${path}.api_key_env` });
  for (const [header, template] of Object.entries(config.headers ?? {})) {
    for (const name of headerEnvNames(template)) env.push({ name, field: `${path}.headers.${header}` });
  }
  const url = config.type === 'openai' && config.base_url !== undefined ? { value: config.base_url, field: `${path}.base_url` } : config.type === 'http' && config.url !== undefined ? { value: config.url, field: `${path}.url` } : null;
  return { url, env };
}

/** The problems of one provider config under the policy; empty when it may run. */
export function providerProblems(policy: ProviderPolicy, config: Parameters<typeof providerTargets>[0], path: string): string[] {
  const targets = providerTargets(config, path);
  const problems: string[] = [];
  for (const { name, field } of targets.env) {
    const refusal = policy.envRefusal(name, field);
    if (refusal !== null) problems.push(refusal);
  }
  if (targets.url !== null) {
    const refusal = policy.hostRefusal(targets.url.value, targets.url.field);
    if (refusal !== null) problems.push(refusal);
  }
  return problems;
}

/** Throws ProviderNotAllowedError naming every refused variable and host of a spec's providers (run and judges). */
export function assertSpecAllowed(
  policy: ProviderPolicy,
  spec: { provider: Parameters<typeof providerTargets>[0]; scorers: ReadonlyArray<{ type: string; provider?: unknown }> },
): void {
  const problems = providerProblems(policy, spec.provider, 'provider');
  for (const [i, scorer] of spec.scorers.entries()) {
    if (scorer.type === 'llm_judge' && typeof scorer.provider === 'object' && scorer.provider !== null) {
      problems.push(...providerProblems(policy, scorer.provider as Parameters<typeof providerTargets>[0], `scorers.${i}.provider`));
    }
  }
  if (problems.length > 0) throw new ProviderNotAllowedError(problems);
}
