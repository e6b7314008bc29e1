import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config.ts';
import { type RunningServer, type ServerExtensions, startServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/obs/logger.ts';
import type { TestDatabase } from './test-database.ts';

export interface TestServer extends RunningServer {
  logs: Array<Record<string, unknown>>;
  /** Sends a request and parses the JSON answer. */
  api(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

/** The real server in this process, on a free loopback port, logging into memory. */
export async function startTestServer(db: TestDatabase, env: Record<string, string> = {}, extensions: ServerExtensions = {}): Promise<TestServer> {
  const logs: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  // Load shedding off unless a test turns it on: on a loaded 2-core machine (PGlite blocks the loop
  // in this process) it would answer stray 503s the test did not ask for.
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', JOB_RETRY_BASE_MS: '20', JOB_RETRY_MAX_MS: '200', JOB_POLL_MS: '200', ...db.env, ...env });
  const server = await startServer(config, createLogger({ level: 'info', destination }), extensions);
  return {
    ...server,
    logs,
    async api(method, route, body, headers = {}) {
      const res = await fetch(`${server.url}${route}`, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
