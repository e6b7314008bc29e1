import { waitFor } from './processes.ts';

/** Helpers for the evaluation integration tests: raw uploads and waiting for a run, against any base URL. */

export interface Answer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export async function request(baseUrl: string, method: string, route: string, body?: unknown, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: body !== undefined ? { 'content-type': contentType } : {},
    ...(body !== undefined ? { body: typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export const uploadDataset = (baseUrl: string, text: string, type = 'application/x-ndjson', query = '') => request(baseUrl, 'POST', `/v1/datasets${query}`, text, type);

export const FINAL = ['succeeded', 'failed', 'cancelled'];

/** Polls GET /v1/evaluations/:id until the run ends (or `statuses`). */
export function waitForRun(baseUrl: string, runId: string, timeoutMs = 45_000, statuses = FINAL): Promise<any> {
  return waitFor(
    `run ${runId} to reach ${statuses.join('/')}`,
    async () => {
      const { body } = await request(baseUrl, 'GET', `/v1/evaluations/${runId}`);
      return statuses.includes(body.status) ? body : undefined;
    },
    timeoutMs,
    100,
  );
}

/** `n` JSONL rows `{id: c<i>, vars: {text: "case <i>"}, expected: "echo: case <i>"}` (what the fake OpenAI server answers). */
export function casesJsonl(n: number, prefix = 'case'): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `c${i + 1}`, vars: { text: `${prefix} ${i + 1}` }, expected: `echo: ${prefix} ${i + 1}` })).join('\n') + '\n';
}

/** A prompt whose only user message is `{{text}}`. */
export const textPrompt = (name: string) => ({ name, messages: [{ role: 'system', content: 'Repeat the text.' }, { role: 'user', content: '{{text}}' }], params: { temperature: 0 } });
