import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { cpuWindow } from './support/cpu.ts';
import { readOptions } from './support/options.ts';
import { benchPool, createBenchDatabase } from './support/postgres.ts';
import { checkBuild, CLI, type ChildServer, JsonClient, REPO_ROOT, sleep, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, percentile, printSummary, ratioSummary } from './support/report.ts';
import { alternatingRounds, type Contender } from './support/job-rounds.ts';
import { killOnExit, type Resources, runBenchmark } from './support/resources.ts';

/**
 * Queue mode end to end: noop jobs submitted to an API in JOB_RUNNER_MODE=queue, run by one
 * `evalops worker` process at concurrency 50, timed until every one is `succeeded` in the table;
 * against raw BullMQ on the same Redis in the same run: `addBulk` of 1000 jobs at a time from this
 * process and a no-op Worker at concurrency 50 in a process of its own. Two evalops contenders: batch
 * submits (POST /v1/jobs/batch, 1000 jobs per request, 2 requests in flight), which is compared with
 * raw BullMQ for the target (ratio >= 0.25: both enqueue in bulk), and per-request submits (one job
 * per POST /v1/jobs, 10 keep-alive clients), whose ratio is printed without a target. Alternating
 * rounds, medians compared. Then the median submit-to-start latency on an idle queue
 * (`started_at - created_at`, one clock; target < 10 ms) and, for the runbook, the cancellation
 * latency of a running sleep job (`finished_at - cancel_requested_at`; the bound is 1 s).
 */
const RATIO_TARGET = 0.25;
const LATENCY_TARGET_MS = 10;
const CANCEL_TARGET_MS = 1000;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Jobs per bulk enqueue, both sides: raw BullMQ's addBulk and evalops' POST /v1/jobs/batch (its MAX_BATCH_JOBS). */
const BULK = 1000;

// The raw BullMQ worker runs as this same file in a child process (bench/ holds one file per benchmark).
if (process.argv[2] === '--raw-worker') await rawWorkerChild(process.argv[3]!, Number(process.argv[4]));

const { values: opts } = readOptions(
  'queue-throughput.ts',
  { jobs: 10_000, rounds: 3, warmup: 1000, clients: 10, 'batch-requests': 2, concurrency: 50, 'latency-jobs': 50, 'cancel-jobs': 10 },
  {
    jobs: 'jobs per measurement',
    rounds: 'alternating rounds',
    warmup: 'jobs each contender runs first, not counted',
    clients: 'concurrent HTTP clients submitting one job per request to the API',
    'batch-requests': `POST /v1/jobs/batch requests (${BULK} jobs each) in flight at once`,
    concurrency: 'concurrency of the evalops worker and of the raw BullMQ worker',
    'latency-jobs': 'jobs submitted one at a time for the latency figure',
    'cancel-jobs': 'running sleep jobs cancelled one at a time',
  },
  { jobs: 2000, rounds: 1, warmup: 200, 'latency-jobs': 20, 'cancel-jobs': 3 },
);

const timeoutFor = (n: number) => 60_000 + n * 20;

/** Only loopback Redis: benchmark traffic never leaves this machine. */
function assertLoopbackRedis(url: string): void {
  const host = new URL(url).hostname;
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new Error(`benchmarks only talk to loopback addresses; ${host} is not one (BENCH_REDIS_URL)`);
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A child process whose stdout goes to a log file; stopped with SIGTERM (SIGKILL after 15 s) at the end. */
function startLogged(resources: Resources, name: string, args: string[], env: Record<string, string>, logFile: string, stdio: 'file' | 'pipe' = 'file'): ChildProcess {
  const out = openSync(logFile, 'a');
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['pipe', stdio === 'pipe' ? 'pipe' : out, out] });
  } finally {
    closeSync(out);
  }
  const forget = killOnExit(() => proc.kill('SIGKILL'));
  resources.defer(`process ${name} (pid ${proc.pid})`, async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    }
    forget();
  });
  return proc;
}

/** Starts `evalops worker` and waits for its start-up line in its log. */
async function startWorkerProcess(resources: Resources, env: Record<string, string>, logFile: string): Promise<ChildProcess> {
  const proc = startLogged(resources, 'evalops worker', [CLI, 'worker', '--name', 'bench', '--concurrency', String(opts.concurrency), '--types', 'noop,sleep', '--no-metrics'], env, logFile);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`evalops worker exited (${proc.exitCode}): ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (readFileSync(logFile, 'utf8').includes('"msg":"evalops worker is running"')) return proc;
    if (Date.now() > deadline) throw new Error('evalops worker did not start within 60 s');
    await sleep(100);
  }
}


/** How a contender hands its N jobs to the API; resolves once every submission is answered. */
interface Submitter {
  name: string;
  submit(n: number): Promise<{ detail: string }>;
}

/**
 * N noop jobs through the API, timed from the first submission until all N are `succeeded` in the
 * table (polled while submissions are still going on); the submitter decides how they are sent.
 */
function evalopsContender(server: ChildServer, workerPid: number, pool: import('pg').Pool, submitter: Submitter): Contender {
  return {
    name: submitter.name,
    async run(n, counted) {
      const { rows } = await pool.query<{ now: Date }>('SELECT now() AS now');
      const since = rows[0]!.now;
      const count = async () =>
        (
          await pool.query<{ done: number; bad: number }>(
            `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS bad FROM jobs WHERE created_at >= $1`,
            [since],
          )
        ).rows[0]!;
      const apiCpu = cpuWindow(server.pid);
      const workerCpu = cpuWindow(workerPid);
      const started = performance.now();
      let submitSeconds = 0;
      // A failed submission ends the wait below at once instead of at its deadline.
      let failed: unknown;
      const submit = submitter.submit(n).then(
        (r) => {
          submitSeconds = (performance.now() - started) / 1000;
          return r;
        },
        (err: unknown) => {
          failed = err;
          throw err;
        },
      );
      submit.catch(() => {});
      const deadline = Date.now() + timeoutFor(n);
      for (;;) {
        if (failed) break;
        const c = await count();
        if (c.bad) throw new Error(`${c.bad} noop job(s) failed or were cancelled`);
        if (c.done >= n) break;
        if (Date.now() > deadline) throw new Error(`only ${c.done} of ${n} jobs succeeded within ${timeoutFor(n)} ms`);
        await sleep(20);
      }
      const seconds = (performance.now() - started) / 1000;
      // After the clock stops: autocannon's result settles only on its next 1 s tick.
      const { detail } = await submit;
      const api = apiCpu.end();
      const worker = workerCpu.end();
      if (counted) {
        note(
          `  ${submitter.name}: ${n} jobs in ${seconds.toFixed(2)} s; submitted after ${submitSeconds.toFixed(2)} s (${fmt(n / submitSeconds)} jobs/s, ${detail}); ` +
            `CPU: API ${api.pidSeconds.toFixed(2)} s (${((api.pidSeconds / n) * 1000).toFixed(3)} ms/job), worker ${worker.pidSeconds.toFixed(2)} s (${((worker.pidSeconds / n) * 1000).toFixed(3)} ms/job), load generator ${api.selfSeconds.toFixed(2)} s, machine ${(api.machineBusy * 100).toFixed(0)}% busy`,
        );
      }
      return n / seconds;
    },
  };
}

/** One job per POST /v1/jobs, from `opts.clients` keep-alive autocannon connections. */
function perRequestSubmitter(server: ChildServer): Submitter {
  return {
    name: 'evalops (per-request submits)',
    async submit(n) {
      const result = await autocannon({ url: `${server.url}/v1/jobs`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"noop"}', connections: opts.clients, amount: n, timeout: 30 });
      if (result['2xx'] !== n || result.non2xx || result.errors || result.timeouts) throw new Error(`submissions: ${result['2xx']} 2xx of ${n}, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
      return { detail: `${n} requests, p50 ${result.latency.p50} ms` };
    },
  };
}

/**
 * BULK jobs per POST /v1/jobs/batch (the raw contender's addBulk size), `opts['batch-requests']`
 * requests in flight, each on a keep-alive connection of its own.
 */
function batchSubmitter(server: ChildServer): Submitter {
  return {
    name: 'evalops (batch submits)',
    async submit(n) {
      const batches = Array.from({ length: Math.ceil(n / BULK) }, (_, i) => Math.min(BULK, n - i * BULK));
      const ms: number[] = [];
      let next = 0;
      const lane = async () => {
        const http = new JsonClient(server.url);
        try {
          for (let i = next++; i < batches.length; i = next++) {
            const size = batches[i]!;
            const t0 = performance.now();
            const res = await http.request('POST', '/v1/jobs/batch', { jobs: Array.from({ length: size }, () => ({ type: 'noop' })) }, 30_000);
            ms.push(performance.now() - t0);
            if (res.status !== 202 || res.body?.created !== size) throw new Error(`POST /v1/jobs/batch of ${size} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
          }
        } finally {
          http.close();
        }
      };
      await Promise.all(Array.from({ length: Math.min(opts['batch-requests'], batches.length) }, lane));
      return { detail: `${batches.length} requests of up to ${BULK} jobs, ${opts['batch-requests']} in flight, p50 ${median(ms).toFixed(0)} ms` };
    },
  };
}

/**
 * The worker side alone: N rows inserted in one statement (not timed), then their ids enqueued with
 * addBulk as the API's dispatcher would, timed until all are `succeeded`. No HTTP, no per-job INSERT:
 * what one evalops worker does per job (claim, run, complete: batched status writes) beside what the
 * raw worker does.
 */
function workerSideContender(queue: Queue, workerPid: number, pool: import('pg').Pool): Contender {
  return {
    name: 'evalops worker alone',
    async run(n, counted) {
      const { rows } = await pool.query<{ job_id: string; now: Date }>(`INSERT INTO jobs (job_id, type) SELECT gen_random_uuid(), 'noop' FROM generate_series(1, $1::int) RETURNING job_id, now() AS now`, [n]);
      const since = rows[0]!.now;
      const cpu = cpuWindow(workerPid);
      const started = performance.now();
      for (let i = 0; i < n; i += 1000) {
        await queue.addBulk(rows.slice(i, i + 1000).map((r) => ({ name: 'noop', data: {}, opts: { jobId: r.job_id, priority: 1001, removeOnComplete: true, removeOnFail: true } })));
      }
      const deadline = Date.now() + timeoutFor(n);
      for (;;) {
        const { rows: c } = await pool.query<{ done: number }>(`SELECT count(*)::int AS done FROM jobs WHERE status = 'succeeded' AND created_at >= $1`, [since]);
        if (c[0]!.done >= n) break;
        if (Date.now() > deadline) throw new Error(`only ${c[0]!.done} of ${n} jobs succeeded within ${timeoutFor(n)} ms`);
        await sleep(20);
      }
      const seconds = (performance.now() - started) / 1000;
      const usage = cpu.end();
      if (counted) note(`  evalops worker alone: ${n} jobs in ${seconds.toFixed(2)} s; CPU: worker ${usage.pidSeconds.toFixed(2)} s (${((usage.pidSeconds / n) * 1000).toFixed(3)} ms/job), machine ${(usage.machineBusy * 100).toFixed(0)}% busy`);
      return n / seconds;
    },
  };
}

/** Raw BullMQ: addBulk from here, a no-op Worker in a child process that says when it has run them. */
function rawContender(queue: Queue, child: ChildProcess): Contender {
  const lines = createInterface({ input: child.stdout! });
  const waiters: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiters.shift()?.(line));
  const nextLine = () => new Promise<string>((resolve) => waiters.push(resolve));
  let batch = 0;
  return {
    name: 'raw BullMQ',
    async run(n, counted) {
      const ready = nextLine();
      child.stdin!.write(`${n}\n`);
      await ready;
      const done = nextLine();
      const cpu = cpuWindow(child.pid);
      const started = performance.now();
      batch++;
      for (let i = 0; i < n; i += BULK) {
        const size = Math.min(BULK, n - i);
        await queue.addBulk(Array.from({ length: size }, (_, j) => ({ name: 'noop', data: {}, opts: { jobId: `b${batch}-${i + j}`, removeOnComplete: true, removeOnFail: true } })));
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutFor(n));
      await done;
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const usage = cpu.end();
      if (counted) note(`  raw BullMQ: ${n} jobs in ${seconds.toFixed(2)} s; CPU: worker ${usage.pidSeconds.toFixed(2)} s (${((usage.pidSeconds / n) * 1000).toFixed(3)} ms/job), this process ${usage.selfSeconds.toFixed(2)} s, machine ${(usage.machineBusy * 100).toFixed(0)}% busy`);
      return n / seconds;
    },
  };
}

/** The raw worker: reads a count on stdin, answers `ready`, then `done` once that many jobs have run. */
async function rawWorkerChild(prefix: string, concurrency: number): Promise<never> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let target = 0;
  let completed = 0;
  const worker = new Worker('raw.noop', async () => undefined, { connection, prefix, concurrency, removeOnComplete: { count: 0 } });
  worker.on('completed', () => {
    if (++completed === target) process.stdout.write('done\n');
  });
  await worker.waitUntilReady();
  createInterface({ input: process.stdin }).on('line', (line) => {
    completed = 0;
    target = Number(line);
    process.stdout.write('ready\n');
  });
  process.on('SIGTERM', () => void worker.close().finally(() => process.exit(0)));
  await new Promise(() => {});
  throw new Error('unreachable');
}


/** One job at a time on the idle queue: `started_at - created_at` from the table. */
async function latency(server: ChildServer, pool: import('pg').Pool): Promise<string> {
  const n = opts['latency-jobs'];
  note(`latency: ${n} jobs, one at a time, on the idle queue`);
  await sleep(1500);
  const http = new JsonClient(server.url);
  const ids: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const res = await http.request('POST', '/v1/jobs', { type: 'noop' });
      if (res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${JSON.stringify(res.body)}`);
      const id = String(res.body.job_id);
      ids.push(id);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { rows } = await pool.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = $1', [id]);
        if (rows[0]?.status === 'succeeded') break;
        if (Date.now() > deadline) throw new Error(`job ${id} did not succeed within 10 s (status ${rows[0]?.status})`);
        await sleep(2);
      }
      await sleep(20);
    }
  } finally {
    http.close();
  }
  const { rows } = await pool.query<{ ms: number }>(`SELECT (extract(epoch FROM started_at - created_at) * 1000)::float8 AS ms FROM jobs WHERE job_id = ANY($1::uuid[])`, [ids]);
  const ms = rows.map((r) => Number(r.ms));
  const med = median(ms);
  note(`  submit-to-start min ${Math.min(...ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`);
  return `queue latency (idle queue): median submit-to-start ${med.toFixed(1)} ms, p95 ${percentile(ms, 95).toFixed(1)} ms over ${n} jobs (target median < ${LATENCY_TARGET_MS} ms) ${med < LATENCY_TARGET_MS ? 'PASS' : 'FAIL'}`;
}

/** Running sleep jobs cancelled one at a time: `finished_at - cancel_requested_at` from the table. */
async function cancellation(server: ChildServer, pool: import('pg').Pool): Promise<string> {
  const n = opts['cancel-jobs'];
  note(`cancellation: ${n} running sleep jobs, one at a time`);
  const http = new JsonClient(server.url);
  const ids: string[] = [];
  const waitStatus = async (id: string, status: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await pool.query<{ status: string }>('SELECT status FROM jobs WHERE job_id = $1', [id]);
      if (rows[0]?.status === status) return;
      if (Date.now() > deadline) throw new Error(`job ${id} did not reach ${status} within 10 s (status ${rows[0]?.status})`);
      await sleep(5);
    }
  };
  try {
    for (let i = 0; i < n; i++) {
      const id = String((await http.request('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 } })).body.job_id);
      ids.push(id);
      await waitStatus(id, 'running');
      await http.request('POST', `/v1/jobs/${id}/cancel`);
      await waitStatus(id, 'cancelled');
    }
  } finally {
    http.close();
  }
  const { rows } = await pool.query<{ ms: number }>(`SELECT (extract(epoch FROM finished_at - cancel_requested_at) * 1000)::float8 AS ms FROM jobs WHERE job_id = ANY($1::uuid[])`, [ids]);
  const ms = rows.map((r) => Number(r.ms));
  const worst = Math.max(...ms);
  return `queue cancellation (running sleep job on a worker): median ${median(ms).toFixed(1)} ms, max ${worst.toFixed(1)} ms over ${n} jobs (target max < ${CANCEL_TARGET_MS} ms) ${worst < CANCEL_TARGET_MS ? 'PASS' : 'FAIL'}`;
}

await runBenchmark('queue-throughput', async (resources) => {
  checkBuild();
  assertLoopbackRedis(REDIS_URL);
  const dir = tempDir(resources, 'queue');
  const prefix = `evalops_bench_${Math.random().toString(16).slice(2, 10)}`;
  resources.defer(`Redis keys ${prefix}:*`, () => deleteKeys(REDIS_URL, prefix));
  const database = await createBenchDatabase(resources, 'queue');
  const env = { DATABASE_URL: database.url, REDIS_URL, QUEUE_PREFIX: prefix, JOB_RUNNER_MODE: 'queue' };
  const server = await startEvalops(resources, { name: 'evalops API (queue mode)', dataDir: path.join(dir, 'api'), logFile: path.join(dir, 'api.log'), env: { ...env, MIGRATE_ON_START: 'true' } });
  const worker = await startWorkerProcess(resources, { ...env, DATA_DIR: path.join(dir, 'worker'), HOST: '127.0.0.1' }, path.join(dir, 'worker.log'));
  note(`API ${server.url} (pid ${server.pid}), worker pid ${worker.pid} at concurrency ${opts.concurrency}, Redis ${REDIS_URL} prefix ${prefix}, database ${database.name}`);
  const pool = benchPool(resources, database.url);

  const rawConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  resources.defer('raw BullMQ connection', () => rawConnection.disconnect());
  const rawQueue = new Queue('raw.noop', { connection: rawConnection, prefix });
  resources.defer('raw BullMQ queue', () => rawQueue.close());
  const rawChild = startLogged(resources, 'raw BullMQ worker', ['--import', 'tsx', path.join(import.meta.dirname, 'queue-throughput.ts'), '--raw-worker', prefix, String(opts.concurrency)], {}, path.join(dir, 'raw.log'), 'pipe');

  note(`throughput: ${opts.jobs} noop jobs; per-request submits from ${opts.clients} HTTP clients, batch submits of ${BULK} jobs with ${opts['batch-requests']} in flight; ${opts.rounds} round(s)`);
  const batched = evalopsContender(server, worker.pid!, pool, batchSubmitter(server));
  const perRequest = evalopsContender(server, worker.pid!, pool, perRequestSubmitter(server));
  const raw = rawContender(rawQueue, rawChild);
  const dispatchConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  resources.defer('dispatch connection', () => dispatchConnection.disconnect());
  const evalopsQueue = new Queue('jobs.noop', { connection: dispatchConnection, prefix });
  resources.defer('evalops noop queue', () => evalopsQueue.close());
  const workerSide = workerSideContender(evalopsQueue, worker.pid!, pool);
  const medians = await alternatingRounds([batched, raw, perRequest, workerSide], { ...opts, nameWidth: 30 });
  const rawFigure = { name: 'raw BullMQ addBulk + no-op Worker', value: medians.get(raw)!, unit: 'jobs/s' };
  const lines = [
    // Like for like: both sides enqueue in bulk.
    ratioSummary('queue (end to end, bulk submits)', { name: `evalops API (POST /v1/jobs/batch of ${BULK}) + 1 worker`, value: medians.get(batched)!, unit: 'jobs/s' }, rawFigure, RATIO_TARGET).line,
    ratioSummary('queue (end to end, one job per request)', { name: 'evalops API (POST /v1/jobs) + 1 worker', value: medians.get(perRequest)!, unit: 'jobs/s' }, rawFigure).line,
    ratioSummary('queue (worker side)', { name: 'evalops worker, ids from addBulk', value: medians.get(workerSide)!, unit: 'jobs/s' }, rawFigure).line,
  ];
  lines.push(await latency(server, pool));
  lines.push(await cancellation(server, pool));
  printSummary(lines);
});
