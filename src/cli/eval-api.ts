import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Config } from '../config/config.ts';
import { DataDirLockedError, lockHolder } from '../db/data-dir-lock.ts';
import { type RunningServer, type ServerInfo, serverInfoPath, StartupError, startServer } from '../http/server.ts';
import { apiCall } from './api-client.ts';
import { cliLogger } from './cli-config.ts';
import { CliError, EXIT } from './exit-codes.ts';

/**
 * Where the prompt, dataset and eval commands send their requests. `--remote URL` names a server;
 * otherwise the command works locally: through the evalops server that holds the embedded
 * database when one runs (PGlite admits one process), else through a temporary service started in
 * this process on the configured database (the same code as `evalops serve`, on a loopback port,
 * with its in-process runner), closed when the command ends.
 */
export interface EvalApi {
  readonly baseUrl: string;
  readonly via: 'remote' | 'server' | 'local';
  call<T>(method: string, route: string, body?: unknown): Promise<T>;
  /** A streamed request or answer (uploads, results). */
  fetch(route: string, init?: RequestInit & { duplex?: 'half' }): Promise<Response>;
  close(): Promise<void>;
}

/** Reads a GET again after a 503 or 429 (a shed request, a restarting server), up to `RETRY_BUDGET_MS`. */
const RETRY_BUDGET_MS = 60_000;

async function callWithRetry<T>(baseUrl: string, method: string, route: string, body?: unknown): Promise<T> {
  const deadline = Date.now() + RETRY_BUDGET_MS;
  for (;;) {
    try {
      return await apiCall<T>(baseUrl, method, route, body);
    } catch (err) {
      // Only reads are repeated: a POST may have done its work before the answer was lost.
      const transient = err instanceof CliError && / answered (503|429): /.test(err.message);
      if (method !== 'GET' || !transient || Date.now() > deadline) throw err;
      const seconds = Number(/retry after (\d+) s/.exec(err.message)?.[1] ?? 2);
      await new Promise((r) => setTimeout(r, Math.min(10, Math.max(1, seconds)) * 1000));
    }
  }
}

function client(baseUrl: string, via: EvalApi['via'], close: () => Promise<void>): EvalApi {
  return {
    baseUrl,
    via,
    call: (method, route, body) => callWithRetry(baseUrl, method, route, body),
    async fetch(route, init = {}) {
      let res: Response;
      try {
        res = await fetch(`${baseUrl}${route}`, {
          ...init,
          headers: { ...(process.env.EVALOPS_API_KEY ? { authorization: `Bearer ${process.env.EVALOPS_API_KEY}` } : {}), ...(init.headers as Record<string, string> | undefined) },
        });
      } catch (err) {
        throw new CliError(`cannot reach evalops at ${baseUrl}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`, EXIT.CANNOT_CONNECT);
      }
      if (!res.ok) {
        const text = await res.text();
        let message = text;
        try {
          message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
        } catch {
          /* not JSON */
        }
        throw new CliError(`${init.method ?? 'GET'} ${route} answered ${res.status}: ${message}`, res.status >= 500 ? EXIT.CANNOT_CONNECT : EXIT.FAILURE);
      }
      return res;
    },
    close,
  };
}

/** Connects as the module comment says. */
export async function connectEvalApi(config: Config, remote: string | undefined): Promise<EvalApi> {
  if (remote) return client(remote.replace(/\/+$/, ''), 'remote', async () => {});
  if (!config.databaseUrl) {
    const holder = lockHolder(config.dataDir);
    const file = serverInfoPath(config.dataDir);
    if (holder !== undefined && existsSync(file)) {
      const info = JSON.parse(readFileSync(file, 'utf8')) as ServerInfo;
      if (info.pid === holder) return client(info.url, 'server', async () => {});
    }
  }
  let server: RunningServer;
  try {
    server = await startServer({ ...config, host: '127.0.0.1', port: 0 }, cliLogger(config));
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      throw new CliError(`the embedded database in ${config.dataDir} is held by process ${err.pid}, which is not an answering evalops server; stop it, or pass --remote URL`, EXIT.CANNOT_CONNECT);
    }
    if (err instanceof StartupError) throw new CliError(err.message, EXIT.FAILURE);
    throw new CliError(`cannot start the local evaluation service: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
  }
  return client(server.url, 'local', () => server.close());
}

/** Runs `body` with an API connection, closing it afterwards (a local service shuts down gracefully). */
export async function withEvalApi<T>(config: Config, remote: string | undefined, body: (api: EvalApi) => Promise<T>): Promise<T> {
  const api = await connectEvalApi(config, remote);
  try {
    return await body(api);
  } finally {
    await api.close();
  }
}

/** The lines of a streamed JSON-lines answer, one at a time. */
export async function* responseLines(res: Response): AsyncGenerator<string> {
  if (!res.body) return;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) yield line;
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) yield buffer;
}
