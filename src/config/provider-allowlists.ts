/**
 * The syntax of PROVIDER_ENV_ALLOWLIST and PROVIDER_ALLOWED_HOSTS, parsed once by loadConfig, and
 * the matching of a name or a URL against them. What a provider may read or call is decided in
 * src/evals/providers/provider-policy.ts; this module only knows the lists.
 */

/** One entry of PROVIDER_ENV_ALLOWLIST: a name, or a pattern where `*` stands for any run of name characters. */
export interface EnvPattern {
  readonly text: string;
  readonly regex: RegExp;
}

/** One entry of PROVIDER_ALLOWED_HOSTS, normalised as a parsed URL's hostname is. */
export interface HostEntry {
  readonly text: string;
  /** `*`: every host. */
  readonly any: boolean;
  /** Lower case, no trailing dot; IPv6 in brackets (`[::1]`) as URL.hostname gives it. */
  readonly hostname: string;
  /** `*.example.com`: any name under example.com (at any depth), not example.com itself. */
  readonly subdomains: boolean;
  /** Undefined: any port. */
  readonly port: string | undefined;
}

const ENV_ENTRY = /^[A-Za-z0-9_*]+$/;

/** Parses `OPENAI_API_KEY,VLLM_*`; returns the patterns or the sentence saying what is wrong. */
export function parseEnvAllowlist(text: string): EnvPattern[] | string {
  const entries = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  const bad = entries.filter((e) => !ENV_ENTRY.test(e));
  if (bad.length > 0) return `accepts comma-separated variable names or patterns like OPENAI_API_KEY,VLLM_* (not ${bad.map((b) => JSON.stringify(b)).join(', ')})`;
  return entries.map((e) => ({ text: e, regex: new RegExp(`^${e.replace(/\*/g, '[A-Za-z0-9_]*')}$`) }));
}

/** True when `name` matches one of the patterns. */
export function envNameListed(patterns: readonly EnvPattern[], name: string): boolean {
  return patterns.some((p) => p.regex.test(name));
}

/** Lower case, no trailing dot: how both sides of a host comparison are written. */
export function normaliseHostname(hostname: string): string {
  return hostname.toLowerCase().replace(/\.+$/, '');
}

function parseHostEntry(raw: string): HostEntry | null {
  if (raw === '*') return { text: raw, any: true, hostname: '', subdomains: false, port: undefined };
  const subdomains = raw.startsWith('*.');
  const rest = subdomains ? raw.slice(2) : raw;
  const match = rest.startsWith('[') ? /^(\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(rest) : /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(rest);
  if (!match) return null;
  const port = match[2];
  if (port !== undefined && Number(port) > 65535) return null;
  let hostname: string;
  try {
    // The URL parser canonicalises as it will for the provider's own URL (0x7f.1 is 127.0.0.1, IDN to punycode).
    hostname = normaliseHostname(new URL(`http://${match[1]}/`).hostname);
  } catch {
    return null;
  }
  if (hostname === '' || (subdomains && hostname.startsWith('['))) return null;
  return { text: raw, any: false, hostname, subdomains, port: port === undefined ? undefined : String(Number(port)) };
}

/** Parses `api.openai.com,vllm.internal:8000,*.example.com,[::1]:11434`; returns the entries or what is wrong. */
export function parseHostAllowlist(text: string): HostEntry[] | string {
  const raw = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  const entries = raw.map((e) => ({ e, parsed: parseHostEntry(e) }));
  const bad = entries.filter((x) => x.parsed === null).map((x) => x.e);
  if (bad.length > 0) {
    return `accepts comma-separated host names or addresses, each with an optional :port (api.openai.com, 10.0.0.5:8000, [fd00::1]:11434, *.example.com, or * for any host), not ${bad.map((b) => JSON.stringify(b)).join(', ')}`;
  }
  return entries.map((x) => x.parsed!);
}

/** The host and port a request to `url` goes to, as compared with the list; null when it is not an http(s) URL. */
export function urlTarget(url: string): { hostname: string; port: string; shown: string } | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  const hostname = normaliseHostname(parsed.hostname);
  const port = parsed.port !== '' ? parsed.port : parsed.protocol === 'https:' ? '443' : '80';
  return { hostname, port, shown: parsed.port !== '' ? `${hostname}:${parsed.port}` : hostname };
}

/** True when the list admits a request to this hostname and port. */
export function hostListed(entries: readonly HostEntry[], target: { hostname: string; port: string }): boolean {
  return entries.some((e) => {
    if (e.any) return true;
    if (e.port !== undefined && e.port !== target.port) return false;
    return e.subdomains ? target.hostname.endsWith(`.${e.hostname}`) : target.hostname === e.hostname;
  });
}
