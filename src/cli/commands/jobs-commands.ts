import type { Command } from 'commander';
import type { Job } from '../../jobs/job-service.ts';
import { apiBaseUrl, apiCall } from '../api-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** `evalops jobs ...`: the jobs API from the terminal. */
export function registerJobsCommands(program: Command): void {
  const jobs = program.command('jobs').description('submit, inspect, cancel and retry jobs through the API').option('--url <url>', 'API base URL (default EVALOPS_URL or http://HOST:PORT)');
  const base = () => apiBaseUrl(configFromEnv(), jobs.opts<{ url?: string }>().url);

  jobs
    .command('submit')
    .argument('<type>', 'job type, e.g. noop or sleep')
    .option('--payload <json>', 'payload as a JSON object', '{}')
    .option('--idempotency-key <key>')
    .option('--priority <n>', 'higher runs first')
    .option('--max-attempts <n>')
    .option('--run-at <time>', 'do not start before this RFC 3339 time (2026-12-08T09:30:00Z)')
    .action(async (type: string, o: { payload: string; idempotencyKey?: string; priority?: string; maxAttempts?: string; runAt?: string }) => {
      let payload: unknown;
      try {
        payload = JSON.parse(o.payload);
      } catch (err) {
        throw new CliError(`--payload is not valid JSON: ${(err as Error).message}`, EXIT.USAGE);
      }
      const body = {
        type,
        payload,
        ...(o.idempotencyKey ? { idempotency_key: o.idempotencyKey } : {}),
        ...(o.priority !== undefined ? { priority: Number(o.priority) } : {}),
        ...(o.maxAttempts !== undefined ? { max_attempts: Number(o.maxAttempts) } : {}),
        ...(o.runAt ? { run_at: o.runAt } : {}),
      };
      print(await apiCall<Job>(base(), 'POST', '/v1/jobs', body));
    });

  jobs.command('get').argument('<id>').action(async (id: string) => print(await apiCall<Job>(base(), 'GET', `/v1/jobs/${encodeURIComponent(id)}`)));
  jobs.command('cancel').argument('<id>').action(async (id: string) => print(await apiCall<Job>(base(), 'POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)));
  jobs.command('retry').argument('<id>').action(async (id: string) => print(await apiCall<Job>(base(), 'POST', `/v1/jobs/${encodeURIComponent(id)}/retry`)));

  jobs
    .command('list')
    .option('--status <s>', 'status or comma-separated statuses')
    .option('--type <t>')
    .option('--since <d>', 'duration (1h) or RFC 3339 time (2026-12-08T09:30:00Z)')
    .option('--limit <n>', 'rows per page', '50')
    .option('--cursor <c>')
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; type?: string; since?: string; limit: string; cursor?: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: o.limit });
      for (const k of ['status', 'type', 'since', 'cursor'] as const) if (o[k]) q.set(k, o[k]!);
      const page = await apiCall<{ jobs: Job[]; next_cursor: string | null }>(base(), 'GET', `/v1/jobs?${q}`);
      if (o.json) {
        print(page);
        return;
      }
      const rows = page.jobs.map((j) => [j.job_id, j.type, j.status, j.attempts, j.error_message, j.created_at]);
      process.stdout.write(`${renderTable(['job_id', 'type', 'status', 'attempts', 'error_message', 'created_at'], rows)}\n`);
      if (page.next_cursor) process.stdout.write(`next page: --cursor ${page.next_cursor}\n`);
    });

  jobs
    .command('stats')
    .option('--since <d>', 'duration or RFC 3339 time', '1h')
    .action(async (o: { since: string }) => {
      const s = await apiCall<{ since: string; counts: Record<string, number>; total: number }>(base(), 'GET', `/v1/jobs/stats?since=${encodeURIComponent(o.since)}`);
      process.stdout.write(`jobs created since ${s.since}\n${renderTable(['status', 'count'], Object.entries(s.counts))}\n`);
    });
}
