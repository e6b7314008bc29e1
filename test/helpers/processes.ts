import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const children = new Set<ChildProcess>();
// A failed test must not leave a server behind.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** An `evalops` command running as its own process, with its JSON log lines collected. */
export interface CliProcess {
  proc: ChildProcess;
  /** Every JSON log line written so far. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Sends `signal` and waits (bounded) for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/**
 * Starts `evalops <args>` with `env` (on top of PATH only) and resolves, with the line itself, once
 * it logs a line whose msg is `readyMsg`; rejects when it exits first or takes over `timeoutMs`.
 */
export function spawnCliProcess(
  args: string[],
  env: Record<string, string>,
  ready: { msg: string; what: string; name: string },
  timeoutMs: number,
): Promise<{ process: CliProcess; line: Record<string, unknown> }> {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffer = '';
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      resolve(code);
    }),
  );
  proc.stderr!.on('data', (d) => (stderr += d));
  const handle: CliProcess = {
    proc,
    logs,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM', stopTimeoutMs = 30_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${ready.name} did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue; // not a JSON line
        }
        logs.push(line);
        if (line.msg === ready.msg) {
          clearTimeout(timer);
          resolve({ process: handle, line });
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${ready.name} exited with ${code} before ${ready.what}; stderr: ${stderr}`));
    });
  });
}

export interface ServerProcess extends CliProcess {
  url: string;
}

/** Starts `evalops serve` as its own process and waits for its "listening" log line. */
export async function spawnServer(env: Record<string, string>, timeoutMs = 30_000): Promise<ServerProcess> {
  const { process: server, line } = await spawnCliProcess(
    ['serve'],
    // Load shedding off unless a test turns it on (stray 503s on a loaded test machine).
    { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', ...env },
    { msg: 'evalops is listening', what: 'listening', name: 'server' },
    timeoutMs,
  );
  return { ...server, url: String(line.url) };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with `env` (on top of PATH only) and bounded time. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false | null>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
