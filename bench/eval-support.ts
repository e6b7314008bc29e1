import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resources } from './support/resources.ts';

/**
 * Shared by the evaluation benchmarks (eval-throughput, eval-replay, eval-memory): a timed
 * OpenAI-compatible endpoint, datasets, and a small client of the evalops API.
 */

/**
 * `POST /v1/chat/completions` answering `echo: <last user message>` after `latencyMs`, keeping the
 * arrival time of the first request and the send time of the last answer of the current window,
 * so every contender is timed by the same observer, start-up excluded.
 */
export class TimedOpenAIServer {
  private server: Server | undefined;
  url = '';
  requests = 0;
  firstAt = 0;
  lastAt = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Integral of requests in flight over time (ms), for the time-averaged concurrency. */
  private inFlightArea = 0;
  private lastChange = 0;
  /** Sum of the real delays between a request's arrival and its answer (timer lateness included). */
  private delaySum = 0;

  private account(now: number): void {
    if (this.lastChange > 0) this.inFlightArea += this.inFlight * (now - this.lastChange);
    this.lastChange = now;
  }

  constructor(private readonly latencyMs: number) {}

  async start(resources: Resources): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const now = performance.now();
        if (this.requests === 0) this.firstAt = now;
        this.requests += 1;
        this.account(now);
        this.inFlight += 1;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        let content = '';
        let model = 'bench';
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model?: string; messages?: Array<{ role: string; content: string }> };
          model = body.model ?? model;
          content = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user')?.content ?? '';
        } catch {
          /* answer anyway */
        }
        setTimeout(() => {
          const text = JSON.stringify({
            id: 'chatcmpl-bench',
            object: 'chat.completion',
            created: 0,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: `echo: ${content}` }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
          });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
          const done = performance.now();
          this.account(done);
          this.inFlight -= 1;
          this.lastAt = done;
          this.delaySum += done - now;
        }, this.latencyMs);
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    resources.defer('timed OpenAI server', () => this.close());
  }

  /** Starts a new measurement window. */
  reset(): void {
    this.requests = 0;
    this.firstAt = 0;
    this.lastAt = 0;
    this.maxInFlight = 0;
    this.inFlightArea = 0;
    this.lastChange = 0;
    this.delaySum = 0;
  }

  /** Requests in flight, averaged over the window, and the mean real answer delay in ms. */
  shape(): { meanInFlight: number; meanDelayMs: number } {
    return { meanInFlight: this.inFlightArea / (this.lastAt - this.firstAt), meanDelayMs: this.delaySum / this.requests };
  }

  /** Cases per second over the window (first request in to last answer out). */
  rate(): number {
    return this.requests / ((this.lastAt - this.firstAt) / 1000);
  }

  close(): Promise<void> {
    if (!this.server) return Promise.resolve();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server!.close(() => resolve()));
  }
}

/** `n` cases `{id, vars: {text}, expected: "echo: <text>"}` as JSONL. */
export function datasetJsonl(n: number): string {
  let out = '';
  for (let i = 1; i <= n; i += 1) out += `{"id":"c${i}","vars":{"text":"case number ${i}"},"expected":"echo: case number ${i}"}\n`;
  return out;
}

/** A JSON client of the evalops API with bounded waits. */
export class EvalopsClient {
  constructor(readonly baseUrl: string) {}

  async call(method: string, route: string, body?: unknown, contentType = 'application/json'): Promise<any> {
    const res = await fetch(`${this.baseUrl}${route}`, {
      method,
      headers: body !== undefined ? { 'content-type': contentType } : {},
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(600_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text);
  }

  /** Submits and waits for the run to end; throws unless it succeeded. */
  async runToEnd(request: Record<string, unknown>, pollMs = 50, timeoutMs = 1_800_000): Promise<any> {
    const submitted = await this.call('POST', '/v1/evaluations', request);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.call('GET', `/v1/evaluations/${submitted.run_id}`);
      if (run.status === 'succeeded') return run;
      if (run.status === 'failed' || run.status === 'cancelled') throw new Error(`run ${run.run_id} ${run.status}: ${run.error_message}`);
      if (Date.now() > deadline) throw new Error(`run ${run.run_id} did not finish within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

/** Resident set size and its high-water mark of a process, in MB (Linux /proc). */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}
