import type { Config } from '../config/config.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** The API's base URL: `--url`, else EVALOPS_URL, else the configured HOST and PORT. */
export function apiBaseUrl(config: Config, given?: string): string {
  const url = given ?? process.env.EVALOPS_URL ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  return url.replace(/\/+$/, '');
}

/** Calls the evalops API; an error answer becomes a CliError carrying the API's sentence. */
export async function apiCall<T>(baseUrl: string, method: string, route: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(process.env.EVALOPS_API_KEY ? { authorization: `Bearer ${process.env.EVALOPS_API_KEY}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(`cannot reach evalops at ${baseUrl}: ${(err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message}`, EXIT.CANNOT_CONNECT);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  if (!res.ok) {
    const message = (parsed as { error?: { message?: string } })?.error?.message ?? text;
    throw new CliError(`${method} ${route} answered ${res.status}: ${message}`, res.status >= 500 ? EXIT.CANNOT_CONNECT : EXIT.FAILURE);
  }
  return parsed as T;
}
