import { type DoctorContext, component, pct, sloOfKind } from './doctor-context.ts';
import { inspectQueue, type QueueEvidence } from './doctor-probes.ts';
import { check, type CheckResult } from './doctor-types.ts';
import { isoOf, num, numOrNull, rowsOf } from './read-query.ts';

/** Section B of the runbook: job success rate drop. */

/** The runbook's B.1 query, verbatim. */
export const RUNBOOK_STATUS_QUERY = `SELECT status, COUNT(*)
FROM jobs
WHERE created_at >= NOW() - INTERVAL '1 hour'
GROUP BY status;`;

/** The runbook's B.2 query, verbatim. */
export const RUNBOOK_FAILED_SAMPLE_QUERY = `SELECT job_id, type, status, error_message, created_at
FROM jobs
WHERE created_at >= NOW() - INTERVAL '1 hour'
  AND status IN ('failed', 'cancelled')
ORDER BY created_at DESC
LIMIT 30;`;

/** Whether a count of failures needs action, with the sentence that says why. */
export interface FailureVerdict {
  readonly action: boolean;
  readonly reason: string;
}

/**
 * The rule the doctor applies to the jobs (and evaluation runs) of the last hour, the SLO's own:
 * with at least `minEvents` ended, the failure share must not exceed the error budget (a burn rate
 * above 1x); with fewer, a ratio means nothing, so every failure is shown.
 */
export function failureVerdict(ended: number, bad: number, errorBudget: number, minEvents: number, noun: string): FailureVerdict {
  if (ended >= minEvents) {
    const ratio = bad / ended;
    const burn = ratio / errorBudget;
    return ratio > errorBudget
      ? { action: true, reason: `${bad} of ${ended} ended ${noun} failed or were cancelled (${pct(ratio)}), above the ${pct(errorBudget)} error budget: burn ${burn.toFixed(1)}x` }
      : { action: false, reason: `${bad} of ${ended} ended ${noun} failed or were cancelled (${pct(ratio)}), within the ${pct(errorBudget)} error budget` };
  }
  return bad > 0
    ? { action: true, reason: `${bad} of ${ended} ended ${noun} failed or were cancelled; too few (fewer than ${minEvents}) to judge a ratio, so every failure is shown` }
    : { action: false, reason: `no failed or cancelled ${noun} among ${ended} ended` };
}

/** `attempt 3 of 3: upstream 502` and `attempt 1 of 3: upstream 502` are the same failure. */
export function normaliseError(message: string | null): string {
  if (!message) return '(no error message)';
  return message
    .replace(/^attempt \d+ of \d+: /, '')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<id>')
    .slice(0, 300);
}

export interface ErrorGroup {
  readonly message: string;
  readonly count: number;
  readonly statuses: readonly string[];
  readonly types: readonly string[];
  readonly latest: string | null;
  readonly example_job_id: string;
}

/** Groups sampled jobs by their normalised error message, largest group first. */
export function groupByError(rows: ReadonlyArray<{ job_id: string; type: string; status: string; error_message: string | null; created_at: string | null }>): ErrorGroup[] {
  const groups = new Map<string, { count: number; statuses: Set<string>; types: Set<string>; latest: string | null; example: string }>();
  for (const r of rows) {
    const key = normaliseError(r.error_message);
    const g = groups.get(key) ?? { count: 0, statuses: new Set<string>(), types: new Set<string>(), latest: null, example: r.job_id };
    g.count += 1;
    g.statuses.add(r.status);
    g.types.add(r.type);
    if (r.created_at && (!g.latest || r.created_at > g.latest)) g.latest = r.created_at;
    groups.set(key, g);
  }
  return [...groups]
    .map(([message, g]) => ({ message, count: g.count, statuses: [...g.statuses].sort(), types: [...g.types].sort(), latest: g.latest, example_job_id: g.example }))
    .sort((a, b) => b.count - a.count || a.message.localeCompare(b.message));
}

/** What to do about a group of failures, from the shape of its message. */
export function nextStepForError(message: string): string {
  if (/^lost:|stopped renewing its lease/.test(message)) return 'the process running them died or stalled: check `evalops workers ping` (queue mode) or the API process, and their stderr';
  if (/timed out after/.test(message)) return "the type's timeout was reached: limit heavy job inputs (JOB_PAYLOAD_LIMIT_BYTES, `evalops limits set`) or look at what the job waits on";
  if (/^cancelled/.test(message)) return 'cancelled on request: the API log names who (`job.cancelled` audit lines)';
  if (/invalid payload|unknown job type/.test(message)) return 'a submitter sends bad input: fix the client; these will not succeed on retry';
  return 'read the message; retry the jobs that failed for a passing reason with `evalops jobs retry <job_id>`';
}

interface Sample {
  job_id: string;
  type: string;
  status: string;
  error_message: string | null;
  created_at: string | null;
}

/** B.1 and B.2: the status distribution of the last hour and the 30 latest failed or cancelled jobs, with the runbook's SQL. */
export async function jobFailureChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const b1 = { id: 'B.status_distribution', step: 'B.1', title: 'Job status distribution of the last hour (the runbook\'s SQL)' };
  const b2 = { id: 'B.failed_jobs', step: 'B.2', title: 'The 30 latest failed or cancelled jobs, grouped by error' };
  if (!ctx.db) {
    const summary = `cannot read the jobs table: ${ctx.dbError}`;
    return [check('B', { ...b1, status: 'skipped', summary }), check('B', { ...b2, status: 'skipped', summary })];
  }
  let counts: Record<string, number>;
  let sample: Sample[];
  let retried = 0;
  try {
    counts = Object.fromEntries(rowsOf(await ctx.db.read(RUNBOOK_STATUS_QUERY)).map((r) => [String(r.status), num(r.count)]));
    sample = rowsOf(await ctx.db.read(RUNBOOK_FAILED_SAMPLE_QUERY)).map((r) => ({
      job_id: String(r.job_id),
      type: String(r.type),
      status: String(r.status),
      error_message: r.error_message === null || r.error_message === undefined ? null : String(r.error_message),
      created_at: isoOf(r.created_at),
    }));
    retried = num(rowsOf(await ctx.db.read(`SELECT count(*)::float8 AS n FROM jobs WHERE created_at >= NOW() - INTERVAL '1 hour' AND attempts > 1`))[0]?.n);
  } catch (err) {
    const summary = `cannot read the jobs table: ${(err as Error).message}`;
    return [check('B', { ...b1, status: 'skipped', summary }), check('B', { ...b2, status: 'skipped', summary })];
  }
  const slo = sloOfKind(ctx, 'job_success');
  const bad = slo.badStatuses.reduce((a, s) => a + (counts[s] ?? 0), 0);
  const ended = (counts.succeeded ?? 0) + bad;
  const verdict = failureVerdict(ended, bad, slo.errorBudget, slo.minEvents, 'jobs');
  const distribution = ['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => `${s} ${counts[s] ?? 0}`).join(', ');
  const groups = groupByError(sample);
  const results: CheckResult[] = [
    check('B', {
      ...b1,
      status: verdict.action ? 'action' : 'ok',
      summary: verdict.reason,
      evidence: [`jobs created in the last hour: ${distribution}`, `jobs that needed more than one attempt: ${retried}`],
      next_step: verdict.action
        ? 'read the failures grouped in B.failed_jobs and follow their next steps; mitigate by switching to JOB_RUNNER_MODE=inprocess (queue-mode trouble) or limiting heavy job inputs'
        : null,
      data: { counts, retried, ended, bad },
    }),
  ];
  results.push(
    check('B', {
      ...b2,
      status: verdict.action && sample.length > 0 ? 'action' : 'ok',
      summary: sample.length === 0 ? 'no failed or cancelled job in the last hour' : `${sample.length} failed or cancelled job(s) in the last hour${sample.length === 30 ? ' (the 30 latest)' : ''}, ${groups.length} distinct error(s); largest: ${groups[0]!.count} × "${groups[0]!.message}"`,
      evidence: groups.map((g) => `${g.count} × "${g.message}" (${g.statuses.join('/')}; type ${g.types.join(', ')}; latest ${g.latest ?? '?'}; e.g. job ${g.example_job_id})`),
      next_step: verdict.action && groups.length ? groups.slice(0, 3).map((g) => `"${g.message.slice(0, 60)}": ${nextStepForError(g.message)}`).join('; ') : null,
      data: { groups, sample },
    }),
  );
  return results;
}

/** B.3: are the workers alive (queue mode), or is the in-process runner running. */
export async function workerChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const wBase = { id: 'B.workers', step: 'B.3', title: 'Worker ping' };
  const qBase = { id: 'B.backlog', step: 'B.3', title: 'Backlog and oldest waiting job' };
  const results: CheckResult[] = [];
  let queue: QueueEvidence | null = null;

  if (ctx.runnerMode === 'queue') {
    if (!ctx.config.redisUrl) {
      results.push(check('B', { ...wBase, status: 'action', summary: 'the server runs in queue mode but REDIS_URL is not set here: cannot ping the workers', next_step: 'run the doctor with the deployment\'s REDIS_URL and QUEUE_PREFIX' }));
    } else {
      queue = await inspectQueue(ctx.config.redisUrl, ctx.config.queue.prefix, ctx.timeoutMs);
      if (queue.error) {
        results.push(
          check('B', { ...wBase, status: 'action', summary: `cannot ping the workers: ${queue.error}`, next_step: 'Redis is the broker: bring it back first (A.redis); jobs wait in the jobs table meanwhile and are enqueued again when it answers' }),
        );
      } else {
        const answered = queue.answered;
        results.push(
          check('B', {
            ...wBase,
            status: answered.length ? 'ok' : 'action',
            summary: answered.length ? `${answered.length} worker(s) answered (prefix ${ctx.config.queue.prefix})` : `no worker answered within ${ctx.timeoutMs} ms (prefix ${ctx.config.queue.prefix})`,
            evidence: [
              ...answered.map((w) => `${w.name} on ${w.host} pid ${w.pid}: ${w.active}/${w.concurrency} active, types ${w.types.join(',')}, answered in ${w.rtt_ms} ms`),
              ...queue.silent.map((w) => `${w.name} on ${w.host} pid ${w.pid}: registered but did not answer (last heartbeat ${w.heartbeat_at})`),
            ],
            next_step: answered.length
              ? null
              : 'restart the workers (`evalops worker`, same REDIS_URL and QUEUE_PREFIX as the API) and read their stderr; `evalops workers ping` confirms',
            data: { asked: queue.asked, answered, silent: queue.silent },
          }),
        );
      }
    }
  } else {
    const bg = component(ctx, 'background_tasks');
    const running = bg ? bg.status !== 'unhealthy' || !/stopped/.test(bg.message ?? '') : null;
    results.push(
      check('B', {
        ...wBase,
        status: running === false ? 'action' : running === null ? 'skipped' : 'ok',
        summary: running === null ? '/health/detailed did not answer: the in-process runner\'s state is unknown' : running ? 'inprocess mode: the API process runs the jobs, and its runner is running' : 'the in-process runner is stopped',
        next_step: running === false ? 'restart the API process; jobs it held are taken back when their lease (JOB_LEASE_MS) expires' : null,
      }),
    );
  }

  if (!ctx.db) {
    results.push(check('B', { ...qBase, status: 'skipped', summary: `cannot read the jobs table: ${ctx.dbError}` }));
    return results;
  }
  let row: Record<string, unknown>;
  try {
    row =
      rowsOf(
        await ctx.db.read(`SELECT count(*) FILTER (WHERE status = 'queued' AND run_at <= now())::float8 AS due,
  count(*) FILTER (WHERE status = 'queued' AND run_at > now())::float8 AS later,
  count(*) FILTER (WHERE status = 'running')::float8 AS running,
  (extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now())) * 1000)::float8 AS oldest_ms
FROM jobs WHERE status IN ('queued', 'running')`),
      )[0] ?? {};
  } catch (err) {
    results.push(check('B', { ...qBase, status: 'skipped', summary: `cannot read the jobs table: ${(err as Error).message}` }));
    return results;
  }
  const oldest = numOrNull(row.oldest_ms);
  const limit = ctx.config.health.queueAgeDegradedMs;
  const evidence = [`jobs table: ${num(row.due)} queued and due, ${num(row.later)} queued for later, ${num(row.running)} running; oldest due job waiting ${oldest === null ? '—' : `${Math.round(oldest / 1000)} s`} (threshold ${limit / 1000} s, HEALTH_QUEUE_AGE_DEGRADED_MS)`];
  if (queue && !queue.error) {
    for (const b of queue.backlog) evidence.push(`BullMQ ${b.type}: waiting ${b.waiting}, delayed ${b.delayed}, active ${b.active}, failed ${b.failed}`);
    if (queue.backlog.length === 0) evidence.push('BullMQ: no queue under this prefix yet');
  }
  const stale = oldest !== null && oldest > limit;
  const stranded = ctx.runnerMode === 'queue' && queue !== null && !queue.error && queue.answered.length === 0 && num(row.due) > 0;
  results.push(
    check('B', {
      ...qBase,
      status: stale || stranded ? 'action' : 'ok',
      summary: stale
        ? `the oldest due job has waited ${Math.round(oldest! / 1000)} s, over ${limit / 1000} s`
        : stranded
          ? `${num(row.due)} due job(s) and no worker to run them`
          : `${num(row.due)} due, ${num(row.running)} running${oldest === null ? '' : `; oldest waiting ${Math.round(oldest / 1000)} s`}`,
      evidence,
      next_step:
        stale || stranded
          ? ctx.runnerMode === 'queue'
            ? 'add or restart workers (`evalops worker --concurrency N`); in an emergency switch the API to JOB_RUNNER_MODE=inprocess so it runs the jobs itself'
            : 'the API cannot keep up: raise JOB_CONCURRENCY or run more API processes, and limit heavy job inputs'
          : null,
      data: { due: num(row.due), later: num(row.later), running: num(row.running), oldest_waiting_ms: oldest, broker: queue?.backlog ?? null },
    }),
  );
  return results;
}
