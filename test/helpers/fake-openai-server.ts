import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenAI-compatible HTTP server on 127.0.0.1 (port 0) for tests and benchmarks: it speaks
 * `POST /v1/chat/completions` as the Chat Completions API documents it, answers deterministically
 * from the messages, and can be scripted to answer 429 (with Retry-After), 500 or anything else.
 */

export type ScriptedAnswer =
  | 'ok'
  /** Never answer (until the server closes): exercises client timeouts. */
  | 'hang'
  | { status: number; retryAfter?: string; body?: unknown; headers?: Record<string, string> };

export interface FakeOpenAIOptions {
  /** Delay before every answer, in ms. @defaultValue 0 */
  latencyMs?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`; others get 401. */
  apiKey?: string;
  /** Answers for the next requests, in order; afterwards every request is answered normally. */
  script?: ScriptedAnswer[];
  /**
   * The answer to a request, decided from its model and messages (after the script): a string is the
   * completion, an object an error answer; undefined answers normally (fakeAnswer).
   */
  reply?: (request: { model: string; messages: ReadonlyArray<{ role: string; content: string }> }) => string | { status: number; body?: unknown } | undefined;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface FakeOpenAIServer {
  /** Base URL for an OpenAI client, ending in `/v1`. */
  url: string;
  requests: RecordedRequest[];
  /** Appends answers to the script. */
  script(...answers: ScriptedAnswer[]): void;
  close(): Promise<void>;
}

/** The deterministic answer: `echo: ` + the last user message (so tests can predict it). */
export function fakeAnswer(messages: ReadonlyArray<{ role: string; content: string }>): string {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  return `echo: ${lastUser?.content ?? ''}`;
}

/** Starts the server; always `close()` it (afterAll). */
export async function start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  const script: ScriptedAnswer[] = [...(options.script ?? [])];
  const timers = new Set<NodeJS.Timeout>();
  const hanging = new Set<ServerResponse>();

  const answer = (req: IncomingMessage, res: ServerResponse, body: unknown): void => {
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      // Real servers quote (part of) the key they were given; ours quotes all of it, so tests can
      // check that clients scrub it from their errors.
      const given = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      sendJson(res, 401, { error: { message: `Incorrect API key provided: ${given}`, type: 'invalid_request_error' } });
      return;
    }
    const scripted = script.shift() ?? 'ok';
    if (scripted === 'hang') {
      hanging.add(res);
      return;
    }
    if (scripted !== 'ok') {
      const headers: Record<string, string> = { ...scripted.headers };
      if (scripted.retryAfter !== undefined) headers['retry-after'] = scripted.retryAfter;
      sendJson(res, scripted.status, scripted.body ?? { error: { message: `scripted ${scripted.status}` } }, headers);
      return;
    }
    const request = body as { model?: unknown; messages?: Array<{ role: string; content: string }> } | null;
    if (request === null || !Array.isArray(request.messages) || typeof request.model !== 'string') {
      sendJson(res, 400, { error: { message: 'model and messages are required' } });
      return;
    }
    const decided = options.reply?.({ model: request.model, messages: request.messages });
    if (typeof decided === 'object') {
      sendJson(res, decided.status, decided.body ?? { error: { message: `scripted ${decided.status}` } });
      return;
    }
    const content = decided ?? fakeAnswer(request.messages);
    const promptTokens = request.messages.reduce((n, m) => n + words(m.content), 0);
    const completionTokens = words(content);
    sendJson(res, 200, {
      id: `chatcmpl-${requests.length}`,
      object: 'chat.completion',
      created: 0,
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] as string;
      let body: unknown = null;
      try {
        body = chunks.length === 0 ? null : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        sendJson(res, 404, { error: { message: `no route ${req.method} ${path}` } });
        return;
      }
      const latency = options.latencyMs ?? 0;
      if (latency <= 0) {
        answer(req, res, body);
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer(req, res, body);
      }, latency);
      timers.add(timer);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    script: (...answers) => {
      script.push(...answers);
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const res of hanging) res.destroy();
      hanging.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export { start as startFakeOpenAIServer };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function words(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}
