/**
 * The dashboard's only way to the API: same origin, same auth as any client. The API key, when the
 * server asks for one, is entered in the page and kept in this browser's localStorage.
 */
const KEY_STORAGE = 'evalops.apiKey';

export function storedKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  window.dispatchEvent(new Event('evalops:key-changed'));
}

/** An answer other than 2xx, with the API's error code and message when it sent them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errorId?: string,
  ) {
    super(message);
  }
}

async function request(method: string, path: string, body?: unknown, alsoOk: readonly number[] = []): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const key = storedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok && !alsoOk.includes(response.status)) {
    let code = `HTTP_${response.status}`;
    let message = response.statusText || `HTTP ${response.status}`;
    let errorId: string | undefined;
    try {
      const parsed = (await response.json()) as { error?: { code?: string; message?: string; error_id?: string } };
      if (parsed.error?.code) code = parsed.error.code;
      if (parsed.error?.message) message = parsed.error.message;
      errorId = parsed.error?.error_id;
    } catch {
      // not JSON: keep the status line
    }
    if (response.status === 401) window.dispatchEvent(new Event('evalops:unauthorized'));
    throw new ApiError(response.status, code, message, errorId);
  }
  return response;
}

/** GET a JSON document. */
export async function getJson<T>(path: string): Promise<T> {
  return (await request('GET', path)).json() as Promise<T>;
}

/** GET a JSON document the API also sends with these error statuses (GET /health/detailed: 503 when unhealthy). */
export async function getJsonAccepting<T>(path: string, statuses: readonly number[]): Promise<T> {
  return (await request('GET', path, undefined, statuses)).json() as Promise<T>;
}

/** GET newline-delimited JSON (results.jsonl, dataset rows). */
export async function getNdjson<T>(path: string): Promise<T[]> {
  const text = await (await request('GET', path)).text();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

/** POST a JSON body (or none); the answer's JSON. */
export async function postJson<T>(path: string, body?: unknown): Promise<T> {
  return (await request('POST', path, body)).json() as Promise<T>;
}

/** Query string from the defined values only. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
