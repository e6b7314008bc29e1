import os from 'node:os';

/**
 * What a benchmark acquired (child processes, databases, temp dirs), released in reverse order of
 * acquisition whether the run ends, fails or is interrupted. Signal handling lives in `runBenchmark`,
 * the one entry-point helper every benchmark script calls.
 */
export class Resources {
  private readonly releasers: Array<{ name: string; release: () => Promise<void> | void }> = [];
  private released: Promise<void> | undefined;

  /** Registers `release` to run at the end; later registrations run first. */
  defer(name: string, release: () => Promise<void> | void): void {
    this.releasers.push({ name, release });
  }

  /** Runs every releaser once, each bounded in time, newest first; never throws. */
  releaseAll(timeoutMs = 30_000): Promise<void> {
    this.released ??= (async () => {
      for (const { name, release } of this.releasers.reverse()) {
        try {
          await withTimeout(Promise.resolve().then(release), timeoutMs, `cleanup of ${name}`);
        } catch (err) {
          console.error(`bench: cleanup of ${name} failed: ${(err as Error).message}`);
        }
      }
      this.releasers.length = 0;
    })();
    return this.released;
  }
}

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Last-resort kills for child processes, run synchronously when this process exits for any reason. */
const exitKills = new Set<() => void>();
process.on('exit', () => {
  for (const kill of exitKills) kill();
});

/** Makes `kill` run if this process exits before `forget` is called. */
export function killOnExit(kill: () => void): () => void {
  exitKills.add(kill);
  return () => exitKills.delete(kill);
}

/**
 * Runs a benchmark as a process entry point: releases its resources when it ends, fails, or gets
 * SIGINT/SIGTERM (exit 130/143 after cleanup), and sets the exit code (1 on error).
 */
export async function runBenchmark(name: string, body: (resources: Resources) => Promise<void>): Promise<void> {
  const resources = new Resources();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      console.error(`bench ${name}: ${signal} again; still cleaning up (bounded), please wait`);
      return;
    }
    interrupted = true;
    console.error(`bench ${name}: ${signal}: stopping and cleaning up`);
    void resources.releaseAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const [load1, load5] = os.loadavg();
  const cores = os.availableParallelism();
  console.log(`bench ${name}: ${cores} cores, load average ${load1!.toFixed(2)} (1 min) ${load5!.toFixed(2)} (5 min)${load1! > cores / 2 ? ' - the machine is busy; expect noisy figures' : ''}`);
  try {
    await body(resources);
  } catch (err) {
    if (!interrupted) {
      console.error(`bench ${name} failed: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    }
  } finally {
    await resources.releaseAll();
  }
  // Pools or sockets left open by a library must not keep a finished benchmark alive.
  if (!interrupted) process.exit();
}
