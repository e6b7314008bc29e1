/**
 * The one redaction of URLs for display: logs, `evalops config`, `/health/detailed`, configuration
 * errors, API answers, run_metadata and MLflow params all show a URL through `redactUrl`.
 *
 * The rule (docs/configuration.md, "Secrets in URLs"):
 * - user-info: a password becomes `***`; a user name alone becomes `***` too (Redis, HTTP and most
 *   services take a bare token there), except for PostgreSQL URLs, where it is the role name;
 * - query parameters whose name looks like a credential become `***`: the name, lower-cased with
 *   `-` and `.` read as `_`, is one of `pwd`, `pass`, `key`, `sig`, `code`, ends in `key`, or
 *   contains `password`, `passwd`, `secret`, `token`, `signature`, `credential`, `auth`, `session`
 *   (so `password`, `sslpassword`, `access_token`, `api_key`, `apikey`, `X-Amz-Signature`,
 *   `X-Amz-Credential`, `X-Amz-Security-Token`, `client_secret`, `subscription-key` are all masked);
 * - a value that is not a URL keeps its shape, with anything between `//` and `@` and the value of
 *   any `name=value` pair whose name looks like a credential masked the same way.
 * Over-masking a harmless parameter costs a look at the configuration; under-masking leaks.
 */

export const REDACTED = '***';

const EXACT_NAMES = new Set(['pwd', 'pass', 'key', 'sig', 'code']);
const NAME_PARTS = ['password', 'passwd', 'secret', 'token', 'signature', 'credential', 'auth', 'session'];

/** True when a query parameter (or `name=value`) name looks like it carries a credential. */
export function isSecretParameter(name: string): boolean {
  const n = name.toLowerCase().replace(/[-.]/g, '_');
  return EXACT_NAMES.has(n) || n.endsWith('key') || NAME_PARTS.some((part) => n.includes(part));
}

/** The URL with its credentials masked as the module comment says; a non-URL is masked by shape. */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return redactUrlLikeText(value);
  }
  if (url.password !== '') url.password = REDACTED;
  else if (url.username !== '' && !/^postgres(ql)?:$/.test(url.protocol)) url.username = REDACTED;
  const names = [...new Set(url.searchParams.keys())];
  for (const name of names) {
    if (isSecretParameter(name)) url.searchParams.set(name, REDACTED);
  }
  let shown = url.toString();
  // A hash can carry an OAuth implicit-grant token (`#access_token=...`).
  if (url.hash !== '') shown = shown.slice(0, shown.length - url.hash.length) + redactUrlLikeText(url.hash);
  return shown;
}

/** Masks credential-shaped parts of text that did not parse as a URL (it may be a mistyped one). */
export function redactUrlLikeText(text: string): string {
  return text
    .replace(/\/\/[^/@\s?#]*@/g, `//${REDACTED}@`)
    .replace(/([A-Za-z0-9_.-]+)=([^&\s#;]*)/g, (whole, name: string) => (isSecretParameter(name) ? `${name}=${REDACTED}` : whole));
}
