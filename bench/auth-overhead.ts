import { execFileSync } from 'node:child_process';
import path from 'node:path';
import autocannon from 'autocannon';
import { processCpuSeconds } from './support/cpu.ts';
import { readOptions } from './support/options.ts';
import { CLI, checkBuild, type ChildServer, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { runBenchmark } from './support/resources.ts';

/**
 * What API keys and rate limiting cost: `GET /v1/jobs/:id` on two evalops servers from the same
 * build (embedded PGlite each, default LOG_LEVEL), loaded in alternating rounds by autocannon:
 *   - on:  an API key in the database, every request carrying it (auth checked, scope `read`), and
 *          the read rate limit counted for every request (set high enough never to refuse);
 *   - off: AUTH_DISABLED=true and RATE_LIMIT_READ_PER_MINUTE=0 (no key check, no counting).
 * Target: "on" at least 0.85 of "off" in req/s. `--redis` adds a third server counting its rate
 * limit in Redis (REDIS_URL, redis://127.0.0.1:6379), reported without a target.
 */
const TARGET = 0.85;

const { values: opts, flags } = readOptions(
  'auth-overhead.ts',
  { rounds: 3, duration: 10, connections: 10, warmup: 3 },
  { rounds: 'alternating rounds', duration: 'seconds per measurement', connections: 'autocannon connections', warmup: 'seconds of warm-up per server' },
  { rounds: 1, duration: 3, warmup: 1 },
  { redis: 'also measure auth with the rate limit counted in Redis (needs Redis on 127.0.0.1:6379), reported without a target' },
);

interface Contender {
  server: ChildServer;
  headers: Record<string, string>;
  jobId: string;
}

/** `evalops migrate up` then `evalops apikey create` on a new embedded database; returns the key. */
function createKey(dataDir: string): string {
  const run = (args: string[]) =>
    execFileSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  run(['migrate', 'up']);
  return run(['apikey', 'create', '--name', 'bench', '--scopes', 'read,jobs:write']).trim();
}

async function submitJob(url: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ type: 'noop' }) });
  if (res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { job_id: string }).job_id;
}

async function load(c: Contender, seconds: number): Promise<{ reqPerSec: number; p99Ms: number; cpuMicros: number; bad: number }> {
  const cpu0 = processCpuSeconds(c.server.pid);
  const result = await autocannon({ url: `${c.server.url}/v1/jobs/${c.jobId}`, headers: c.headers, connections: opts.connections, duration: seconds, timeout: 10 });
  const cpuMicros = ((processCpuSeconds(c.server.pid) - cpu0) / Math.max(1, result.requests.total)) * 1e6;
  return { reqPerSec: result.requests.average, p99Ms: result.latency.p99, cpuMicros, bad: result.non2xx + result.errors + result.timeouts };
}

await runBenchmark('auth-overhead', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'auth');
  note(`GET /v1/jobs/:id, autocannon -c ${opts.connections} -d ${opts.duration}, ${opts.rounds} alternating round(s); logs in ${dir}`);

  // The key is created before its server starts (directly in the embedded database), as an operator would.
  const onDir = path.join(dir, 'data-on');
  const key = createKey(onDir);
  const highLimits = { RATE_LIMIT_READ_PER_MINUTE: '1000000000', RATE_LIMIT_WRITE_PER_MINUTE: '1000000000' };
  const on = await startEvalops(resources, { name: 'auth + rate limit on', dataDir: onDir, logFile: path.join(dir, 'on.log'), env: highLimits });
  const off = await startEvalops(resources, {
    name: 'auth + rate limit off',
    dataDir: path.join(dir, 'data-off'),
    logFile: path.join(dir, 'off.log'),
    env: { AUTH_DISABLED: 'true', RATE_LIMIT_READ_PER_MINUTE: '0', RATE_LIMIT_WRITE_PER_MINUTE: '0' },
  });
  const withKey = { authorization: `Bearer ${key}` };
  const contenders: Contender[] = [
    { server: on, headers: withKey, jobId: await submitJob(on.url, withKey) },
    { server: off, headers: {}, jobId: await submitJob(off.url, {}) },
  ];
  if (flags.redis) {
    const redisDir = path.join(dir, 'data-redis');
    const redisKey = createKey(redisDir);
    const redis = await startEvalops(resources, {
      name: 'on, limit in Redis',
      dataDir: redisDir,
      logFile: path.join(dir, 'redis.log'),
      env: { ...highLimits, REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: `bench-auth-${process.pid}` },
    });
    const headers = { authorization: `Bearer ${redisKey}` };
    contenders.push({ server: redis, headers, jobId: await submitJob(redis.url, headers) });
  }
  // A request without the key must be refused by "on": the figure measures a server that checks.
  const refused = await fetch(`${on.url}/v1/jobs/${contenders[0]!.jobId}`);
  if (refused.status !== 401) throw new Error(`"on" answered ${refused.status} without a key; expected 401`);
  note(`servers: ${contenders.map((c) => `${c.server.name} at ${c.server.url} (pid ${c.server.pid})`).join('; ')}`);

  for (const c of contenders) await load(c, opts.warmup);
  note(`warmed up every server (${opts.warmup} s each)`);

  const figures = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  const cpu = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    const order = round % 2 === 1 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const r = await load(c, opts.duration);
      if (r.bad) throw new Error(`${c.server.name}: ${r.bad} non-2xx answers, errors or timeouts during the run`);
      figures.get(c)!.push(r.reqPerSec);
      cpu.get(c)!.push(r.cpuMicros);
      note(`round ${round}: ${c.server.name.padEnd(22)} ${fmt(r.reqPerSec).padStart(8)} req/s  p99 ${r.p99Ms} ms  server CPU ${r.cpuMicros.toFixed(1)} us/request`);
    }
  }

  const [onC, offC, redisC] = contenders as [Contender, Contender, Contender | undefined];
  const value = (c: Contender) => median(figures.get(c)!);
  const lines = [
    ratioSummary('auth-overhead', { name: 'auth + rate limit on', value: value(onC), unit: 'req/s' }, { name: 'both off', value: value(offC), unit: 'req/s' }, TARGET).line,
    `auth-overhead (server CPU per request): on ${median(cpu.get(onC)!).toFixed(1)} us vs off ${median(cpu.get(offC)!).toFixed(1)} us = ${(median(cpu.get(onC)!) / median(cpu.get(offC)!)).toFixed(2)}x the CPU (no target) INFO`,
  ];
  if (redisC) lines.push(ratioSummary('auth-overhead (Redis)', { name: 'on, limit in Redis', value: value(redisC), unit: 'req/s' }, { name: 'both off', value: value(offC), unit: 'req/s' }).line);
  printSummary(lines);
});
