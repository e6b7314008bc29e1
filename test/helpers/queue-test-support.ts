import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/config.ts';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import { type RunningWorker, startWorker, type WorkerProcessOptions } from '../../src/jobs/runners/bullmq-worker-process.ts';
import { createLogger } from '../../src/obs/logger.ts';
import { type CliProcess, spawnCliProcess } from './processes.ts';
import type { TestDatabase } from './test-database.ts';

/** The shared Redis of the dev machines (.ci/run starts it); each test file works under a prefix of its own. */
export const TEST_REDIS_URL = process.env.EVALOPS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A BullMQ key prefix no other test file uses. */
export function testPrefix(file: string): string {
  return `evalops_t_${file}_${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `prefix` (afterAll). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    /* a Redis that is gone has nothing left to clean */
  } finally {
    redis.disconnect();
  }
}

const children = new Set<ChildProcess>();
// A failed test must not leave a worker or a Redis behind.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function freePort(): Promise<number> {
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

export interface TestRedisServer {
  url: string;
  port: number;
  /** SIGKILL: nothing is saved (no persistence anyway); resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
}

/**
 * A redis-server of the test's own on a free loopback port, without persistence (`--save ""
 * --appendonly no`), so a restart loses every key, as the worst outage would. Kill it in afterAll.
 */
export async function startRedisServer(extraArgs: string[] = []): Promise<TestRedisServer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs], { stdio: 'ignore' });
    children.add(child);
    child.once('exit', () => children.delete(child));
    proc = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} on port ${port}`);
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        /* not yet */
      } finally {
        probe.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await gone;
  };
  await launch();
  return { url: `redis://127.0.0.1:${port}`, port, kill, restart: launch };
}

export interface WorkerProcess extends CliProcess {
  metricsUrl: string | null;
  workerId: string;
}

/** Starts `evalops worker` as its own process and waits for its "evalops worker is running" line. */
export async function spawnWorker(env: Record<string, string>, args: string[] = [], timeoutMs = 30_000): Promise<WorkerProcess> {
  const { process: worker, line } = await spawnCliProcess(
    ['worker', ...args],
    { HOST: '127.0.0.1', LOG_LEVEL: 'info', JOB_RUNNER_MODE: 'queue', ...env },
    { msg: 'evalops worker is running', what: 'running', name: 'worker' },
    timeoutMs,
  );
  return { ...worker, metricsUrl: (line.metrics_url as string | null) ?? null, workerId: String(line.worker_id) };
}

export interface TestWorker extends RunningWorker {
  logs: Array<Record<string, unknown>>;
}

/** A worker in this process (its handlers can be the test's own), logging into memory. */
export async function startTestWorker(
  db: TestDatabase,
  env: Record<string, string>,
  options: WorkerProcessOptions & { handlers?: JobHandler[] } = {},
): Promise<TestWorker> {
  const logs: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const config = loadConfig({ HOST: '127.0.0.1', JOB_RETRY_BASE_MS: '20', JOB_RETRY_MAX_MS: '200', JOB_RUNNER_MODE: 'queue', ...db.env, ...env });
  const worker = await startWorker(config, createLogger({ level: 'info', destination }), options);
  return { ...worker, logs };
}
