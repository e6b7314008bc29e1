import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/config.ts';
import { createRedis, redisReady } from '../../jobs/runners/bullmq-queues.ts';
import { listLiveWorkers, pingWorkers } from '../../jobs/runners/bullmq-worker-registry.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';

/** Connects to REDIS_URL for a one-shot command, or ends it with the sentence that says why not. */
export async function connectRedis(config: Config, purpose: string): Promise<Redis> {
  if (!config.redisUrl) throw new CliError('REDIS_URL is not set: queue mode keeps its workers and backlog in that Redis', EXIT.CONFIG);
  const redis = createRedis(config.redisUrl, 'commands', `evalops-cli:${purpose}`);
  try {
    await redisReady(redis, 3000);
  } catch (err) {
    redis.disconnect();
    throw new CliError(`cannot reach Redis at ${config.redisUrl.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
  }
  return redis;
}

const ago = (iso: string) => `${((Date.now() - Date.parse(iso)) / 1000).toFixed(1)} s ago`;

/** `evalops workers ping`: which queue-mode workers answer right now. */
export function registerWorkersCommands(program: Command): void {
  const workers = program.command('workers').description('queue-mode workers (BullMQ on REDIS_URL)');
  workers
    .command('ping')
    .description(`ask every live worker to answer; exit ${EXIT.OK} when at least one answers, ${EXIT.FAILURE} when none does, ${EXIT.CANNOT_CONNECT} when Redis cannot be reached`)
    .option('--timeout <ms>', 'how long to wait for answers', '2000')
    .option('--json', 'print JSON')
    .action(async (o: { timeout: string; json?: boolean }) => {
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new CliError(`--timeout: accepts 1 to 60000 ms (got "${o.timeout}")`, EXIT.USAGE);
      const config = configFromEnv();
      const redis = await connectRedis(config, 'ping');
      const blocking = createRedis(config.redisUrl!, 'blocking', 'evalops-cli:ping-replies');
      try {
        const { asked, answers } = await pingWorkers(redis, blocking, config.queue.prefix, timeoutMs);
        const registered = await listLiveWorkers(redis, config.queue.prefix);
        const answered = new Set(answers.map((a) => a.info.worker_id));
        const silent = registered.filter((w) => !answered.has(w.worker_id));
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ prefix: config.queue.prefix, asked, answered: answers.map((a) => ({ ...a.info, rtt_ms: a.rtt_ms })), registered_not_answering: silent }, null, 2)}\n`);
        } else {
          const rows = [
            ...answers.map((a) => [a.info.name, a.info.host, a.info.pid, a.info.concurrency, a.info.active, a.info.types.join(','), ago(a.info.heartbeat_at), `${a.rtt_ms} ms`, a.info.metrics_url]),
            ...silent.map((w) => [w.name, w.host, w.pid, w.concurrency, w.active, w.types.join(','), ago(w.heartbeat_at), 'no answer', w.metrics_url]),
          ];
          process.stdout.write(`${renderTable(['name', 'host', 'pid', 'concurrency', 'active', 'types', 'last heartbeat', 'answered', 'metrics'], rows)}\n`);
          process.stdout.write(
            answers.length
              ? `${answers.length} worker(s) answered (prefix ${config.queue.prefix})\n`
              : `no worker answered within ${timeoutMs} ms (prefix ${config.queue.prefix}, REDIS_URL ${config.redisUrl!.replace(/\/\/[^@/]*@/, '//***@')}): start \`evalops worker\`, or check that it uses the same REDIS_URL and QUEUE_PREFIX\n`,
          );
        }
        if (answers.length === 0) process.exitCode = EXIT.FAILURE;
      } finally {
        blocking.disconnect();
        redis.disconnect();
      }
    });
}
