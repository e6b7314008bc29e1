import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { killOnExit, type Resources } from './resources.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');
const BARE_FASTIFY = path.join(REPO_ROOT, 'bench', 'bare-fastify-server.ts');

/** A temp dir removed at the end. */
export function tempDir(resources: Resources, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `evalops-bench-${prefix}-`));
  resources.defer(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Refuses to benchmark a missing build and warns about one older than the sources. */
export function checkBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm run bench\` does it)`);
  const built = statSync(CLI).mtimeMs;
  const newest = newestMtime(path.join(REPO_ROOT, 'src'));
  if (newest > built) console.warn(`bench: warning: src/ changed after dist/ was built; run \`npm run build\` to benchmark the current code`);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** A free TCP port on 127.0.0.1, found by binding port 0 and closing it again. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  name: string;
  url: string;
  pid: number;
  /** Whether the server's "evalops is listening" log line is in its log file by now (false for other servers). */
  listeningLogged: () => boolean;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface EvalopsOptions {
  name: string;
  /** DATA_DIR (the embedded database lives under it when DATABASE_URL is unset). */
  dataDir: string;
  /** Where the server's stdout and stderr go. */
  logFile: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

/**
 * Starts `node dist/cli/main.js serve` on a port of our choosing and waits until `/health` answers.
 * Waiting on the health route rather than the log line keeps working when logs are buffered.
 */
export async function startEvalops(resources: Resources, options: EvalopsOptions): Promise<ChildServer> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: options.dataDir,
    ...options.env,
  };
  const server = await startChild(resources, options.name, [CLI, 'serve'], env, port, options.logFile, options.startTimeoutMs ?? 60_000);
  return {
    ...server,
    listeningLogged: () => existsSync(options.logFile) && readFileSync(options.logFile, 'utf8').includes('"msg":"evalops is listening"'),
  };
}

/** Starts the bare Fastify hello-world server (bench/bare-fastify-server.ts) as its own process. */
export async function startBareFastify(resources: Resources, logFile: string): Promise<ChildServer> {
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), HOST: '127.0.0.1', PORT: String(port) };
  return startChild(resources, 'bare fastify', ['--import', 'tsx', BARE_FASTIFY], env, port, logFile, 30_000);
}

async function startChild(resources: Resources, name: string, args: string[], env: Record<string, string>, port: number, logFile: string, timeoutMs: number): Promise<ChildServer> {
  const out = openSync(logFile, 'a');
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  let spawnError: Error | undefined;
  proc.on('error', (err) => (spawnError = err));
  const forget = killOnExit(() => proc.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  const stop = async (stopTimeoutMs = 15_000) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    }
    forget();
  };
  resources.defer(`process ${name} (pid ${proc.pid})`, () => stop());
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) throw new Error(`${name} could not be started: ${spawnError.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before answering; its output:\n${tail(logFile)}`);
    }
    if ((await probeHealth(url)) === 200) break;
    if (Date.now() > deadline) throw new Error(`${name} did not answer ${url}/health within ${timeoutMs} ms; its output:\n${tail(logFile)}`);
    await sleep(100);
  }
  return { name, url, pid: proc.pid!, listeningLogged: () => false, stop };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no output)';
  }
}

/** GET /health with a fresh connection and a 1 s timeout; the status code, or 0 when nothing answered. */
function probeHealth(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/health`, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A keep-alive JSON client for one-at-a-time requests (each bounded by `timeoutMs`). */
export class JsonClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly baseUrl: string) {}

  request(method: string, pathname: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        `${this.baseUrl}${pathname}`,
        { method, agent: this.agent, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${pathname} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
