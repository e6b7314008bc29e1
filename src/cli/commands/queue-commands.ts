import type { Command } from 'commander';
import { openDatabase } from '../../db/database.ts';
import { dispatchableJobs, openJobCountsByType } from '../../jobs/job-store.ts';
import { brokerCounts, heldByBroker, QueueSet, queuedTypesInRedis } from '../../jobs/runners/bullmq-queues.ts';
import { listLiveWorkers } from '../../jobs/runners/bullmq-worker-registry.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';
import { connectRedis } from './workers-commands.ts';

/** Queued rows checked one by one against BullMQ; more are summarised by counts only. */
const CHECK_LIMIT = 100_000;

interface TypeStats {
  type: string;
  bullmq: { waiting: number; delayed: number; active: number; failed: number };
  table: { queued_due: number; queued_later: number; running: number };
  /** Queued rows whose BullMQ job does not exist. */
  missing: number;
  flags: string[];
}

/** `evalops queue stats`: BullMQ's backlog per state beside the jobs table's counts. */
export function registerQueueCommands(program: Command): void {
  const queue = program.command('queue').description('queue-mode backlog (BullMQ on REDIS_URL) against the jobs table');
  queue
    .command('stats')
    .description('BullMQ backlog per type and state (waiting, delayed, active, failed) beside the table\'s queued and running counts; flags disagreement')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const config = configFromEnv();
      if (!config.databaseUrl) throw new CliError('DATABASE_URL is not set: queue mode keeps its jobs table on PostgreSQL', EXIT.CONFIG);
      const redis = await connectRedis(config, 'queue-stats');
      const queues = new QueueSet(redis, config.queue.prefix);
      let database;
      try {
        database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
      } catch (err) {
        redis.disconnect();
        throw new CliError(`cannot reach the database: ${(err as Error).message}`, EXIT.CANNOT_CONNECT);
      }
      try {
        const table = await openJobCountsByType(database.db);
        const types = [...new Set([...table.map((t) => t.type), ...(await queuedTypesInRedis(redis, config.queue.prefix))])].sort();
        const queued = await dispatchableJobs(database.db, { limit: CHECK_LIMIT });
        const held = await heldByBroker(redis, queues, queued);
        const missingByType = new Map<string, number>();
        queued.forEach((job, i) => {
          if (!held[i]) missingByType.set(job.type, (missingByType.get(job.type) ?? 0) + 1);
        });
        const stats: TypeStats[] = [];
        for (const type of types) {
          const b = await brokerCounts(queues.get(type));
          const t = table.find((r) => r.type === type) ?? { queued_due: 0, queued_later: 0, running: 0 };
          const missing = missingByType.get(type) ?? 0;
          const flags: string[] = [];
          if (missing) flags.push(`${missing} queued row(s) not in BullMQ: a queue-mode API enqueues them within QUEUE_RECONCILE_MS (${config.queue.reconcileMs} ms); none running?`);
          const extra = b.waiting + b.delayed - (t.queued_due + t.queued_later - missing);
          if (extra > 0) flags.push(`${extra} delivery(ies) for rows no longer queued (cancelled, finished or run by an inprocess API): workers drop them`);
          if (b.active !== t.running) flags.push(`BullMQ active ${b.active} vs table running ${t.running}: equal in a steady state; a lasting gap is a worker that died (lease and stalled check recover it) or jobs run by an inprocess API`);
          if (b.failed) flags.push(`${b.failed} failed in BullMQ (a processor error); their rows are the record`);
          stats.push({ type, bullmq: { waiting: b.waiting, delayed: b.delayed, active: b.active, failed: b.failed }, table: { queued_due: t.queued_due, queued_later: t.queued_later, running: t.running }, missing, flags });
        }
        const workers = await listLiveWorkers(redis, config.queue.prefix);
        const agree = stats.every((s) => s.flags.length === 0);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ prefix: config.queue.prefix, live_workers: workers.length, agree, checked_rows: queued.length, types: stats }, null, 2)}\n`);
          return;
        }
        const rows = stats.map((s) => [s.type, s.bullmq.waiting, s.bullmq.delayed, s.bullmq.active, s.bullmq.failed, s.table.queued_due, s.table.queued_later, s.table.running, s.missing, s.flags.length ? 'DISAGREE' : 'ok']);
        process.stdout.write(
          `${renderTable(['type', 'waiting', 'delayed', 'active', 'failed', 'table queued (due)', 'table queued (later)', 'table running', 'not in BullMQ', 'agreement'], rows)}\n`,
        );
        for (const s of stats) for (const flag of s.flags) process.stdout.write(`${s.type}: ${flag}\n`);
        if (queued.length === CHECK_LIMIT) process.stdout.write(`only the first ${CHECK_LIMIT} queued rows were checked against BullMQ one by one\n`);
        process.stdout.write(`live workers: ${workers.length} (prefix ${config.queue.prefix}); ${agree ? 'BullMQ and the table agree' : 'see the lines above'}\n`);
      } finally {
        await queues.close();
        redis.disconnect();
        await database.close();
      }
    });
}
