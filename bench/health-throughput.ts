import path from 'node:path';
import autocannon from 'autocannon';
import { processCpuSeconds } from './support/cpu.ts';
import { readOptions } from './support/options.ts';
import { checkBuild, type ChildServer, startBareFastify, startEvalops, tempDir } from './support/processes.ts';
import { fmt, median, note, printSummary, ratioSummary } from './support/report.ts';
import { runBenchmark } from './support/resources.ts';

/**
 * GET /health of the real service (embedded defaults) against a bare Fastify hello world, each its
 * own process, loaded by autocannon from this process in alternating rounds (A B, B A, A B, ...).
 * Target: evalops' median req/s at least 0.8 of bare Fastify's.
 */
const TARGET = 0.8;

const { values: opts, flags } = readOptions(
  'health-throughput.ts',
  { rounds: 3, duration: 10, connections: 10, warmup: 3 },
  { rounds: 'alternating rounds', duration: 'seconds per measurement', connections: 'autocannon connections', warmup: 'seconds of warm-up per server' },
  { rounds: 1, duration: 3, warmup: 1 },
  { breakdown: 'also measure evalops with LOG_LEVEL=warn (no per-request log line), reported without a target' },
);

interface Load {
  reqPerSec: number;
  p99Ms: number;
  /** Server CPU (user + system) per answered request: steadier than req/s while others load the machine. */
  cpuMicrosPerRequest: number;
  non2xx: number;
  errors: number;
}

async function load(server: ChildServer, seconds: number): Promise<Load> {
  const cpu0 = processCpuSeconds(server.pid);
  const result = await autocannon({ url: `${server.url}/health`, connections: opts.connections, duration: seconds, timeout: 10 });
  const cpuMicrosPerRequest = ((processCpuSeconds(server.pid) - cpu0) / Math.max(1, result.requests.total)) * 1e6;
  return { reqPerSec: result.requests.average, p99Ms: result.latency.p99, cpuMicrosPerRequest, non2xx: result.non2xx, errors: result.errors + result.timeouts };
}

await runBenchmark('health-throughput', async (resources) => {
  checkBuild();
  const dir = tempDir(resources, 'health');
  note(`GET /health, autocannon -c ${opts.connections} -d ${opts.duration}, ${opts.rounds} alternating round(s); logs in ${dir}`);
  const evalops = await startEvalops(resources, { name: 'evalops', dataDir: path.join(dir, 'data'), logFile: path.join(dir, 'evalops.log') });
  const quiet = flags.breakdown
    ? await startEvalops(resources, { name: 'evalops (LOG_LEVEL=warn)', dataDir: path.join(dir, 'data-quiet'), logFile: path.join(dir, 'evalops-quiet.log'), env: { LOG_LEVEL: 'warn' } })
    : undefined;
  const bare = await startBareFastify(resources, path.join(dir, 'bare-fastify.log'));
  note(`evalops (embedded PGlite, default LOG_LEVEL) at ${evalops.url}, pid ${evalops.pid}; bare fastify at ${bare.url}, pid ${bare.pid}`);
  if (!evalops.listeningLogged()) note('note: evalops answers /health but its "evalops is listening" log line has not reached its log yet (buffered stdout)');

  const servers = quiet ? [evalops, quiet, bare] : [evalops, bare];
  for (const server of servers) await load(server, opts.warmup);
  note(`warmed up every server (${opts.warmup} s each)`);

  const figures = new Map<ChildServer, number[]>(servers.map((s) => [s, []]));
  const cpuFigures = new Map<ChildServer, number[]>(servers.map((s) => [s, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    const order = round % 2 === 1 ? servers : [...servers].reverse();
    for (const server of order) {
      const r = await load(server, opts.duration);
      if (r.non2xx || r.errors) throw new Error(`${server.name}: ${r.non2xx} non-2xx answers and ${r.errors} errors/timeouts during the run`);
      figures.get(server)!.push(r.reqPerSec);
      cpuFigures.get(server)!.push(r.cpuMicrosPerRequest);
      note(`round ${round}: ${server.name.padEnd(25)} ${fmt(r.reqPerSec).padStart(8)} req/s  p99 ${r.p99Ms} ms  server CPU ${r.cpuMicrosPerRequest.toFixed(1)} us/request`);
    }
  }

  const subject = median(figures.get(evalops)!);
  const baseline = median(figures.get(bare)!);
  const summary = ratioSummary('health', { name: 'evalops', value: subject, unit: 'req/s' }, { name: 'bare fastify', value: baseline, unit: 'req/s' }, TARGET);
  const cpuOf = (server: ChildServer) => median(cpuFigures.get(server)!);
  const lines = [
    summary.line,
    `health (server CPU per request): evalops ${cpuOf(evalops).toFixed(1)} us vs bare fastify ${cpuOf(bare).toFixed(1)} us = ${(cpuOf(evalops) / cpuOf(bare)).toFixed(2)}x the CPU (no target) INFO`,
  ];
  if (quiet) {
    const quietFigure = { name: 'evalops with LOG_LEVEL=warn', value: median(figures.get(quiet)!), unit: 'req/s' };
    lines.push(ratioSummary('health (breakdown)', quietFigure, { name: 'bare fastify', value: baseline, unit: 'req/s' }).line);
  }
  printSummary(lines);
});
