import { redactUrl } from '../config/config.ts';
import { BURN_RATE_ALERTS } from '../obs/slo-math.ts';
import { type DoctorContext, component, pct, sloOfKind } from './doctor-context.ts';
import { pingRedis } from './doctor-probes.ts';
import { check, type CheckResult, type DoctorSection } from './doctor-types.ts';
import { routeClassLabel } from './incident-impact.ts';
import { num, rowsOf, secondsAgo } from './read-query.ts';
import { formatSloReport } from './slo-report-text.ts';

/** The common first checks and section A (API availability) of the runbook. */

const line = (probe: { route: string; status: number | null; error: string | null; ms: number }, what: string) =>
  `GET ${probe.route} → ${probe.status ?? 'no answer'}${probe.error ? ` (${probe.error})` : ''}${what ? ` ${what}` : ''} in ${probe.ms} ms`;

/** Common first check 1: the scope of the failure, from /health, /health/detailed and /metrics. */
export function endpointsCheck(ctx: DoctorContext): CheckResult {
  const { health, detailed, metrics } = ctx;
  const evidence: string[] = [];
  const problems: string[] = [];
  const healthOk = health.status === 200 && (health.body as { status?: string } | null)?.status === 'ok';
  evidence.push(line(health, healthOk ? '{"status":"ok"}' : typeof health.body === 'string' ? health.body.slice(0, 120) : JSON.stringify(health.body)));
  if (!healthOk) problems.push(health.status === null ? `the API at ${ctx.url} does not answer (${health.error})` : `/health answered ${health.status}`);

  const d = detailed.body as { status?: string; version?: string; commit?: string | null; components?: Record<string, { status: string }> } | null;
  if (d && typeof d === 'object' && d.components) {
    const parts = Object.entries(d.components).map(([name, c]) => `${name} ${c.status}`);
    evidence.push(line(detailed, `${d.status}: ${parts.join(', ')} (version ${d.version ?? '?'}, commit ${d.commit ?? 'not set'})`));
  } else {
    evidence.push(line(detailed, ''));
    problems.push(detailed.status === null ? `/health/detailed does not answer (${detailed.error})` : `/health/detailed answered ${detailed.status} without components`);
  }

  const text = typeof metrics.body === 'string' ? metrics.body : '';
  if (metrics.status === 200) evidence.push(line(metrics, text.includes('http_requests_total') ? 'Prometheus text with http_requests_total' : 'without http_requests_total'));
  else if (metrics.status === 401 || metrics.status === 403) evidence.push(line(metrics, 'METRICS_TOKEN is required: set the same METRICS_TOKEN for the doctor to read it'));
  else {
    evidence.push(line(metrics, ''));
    problems.push(metrics.status === null ? `/metrics does not answer (${metrics.error})` : `/metrics answered ${metrics.status}`);
  }

  const down = !healthOk;
  return check('common', {
    id: 'common.endpoints',
    step: 'common.1',
    title: 'Scope: /health, /health/detailed, /metrics',
    status: problems.length ? 'action' : 'ok',
    summary: problems.length ? problems.join('; ') : `the API at ${ctx.url} answers; /health/detailed is ${d?.status}`,
    evidence,
    next_step: problems.length
      ? down
        ? 'the process is down or wedged: check the process manager (is `evalops serve` running?), then its log lines (common check 3); restart it or roll back'
        : 'read the failing component below (section A) and the API log lines of the failing requests (common check 3)'
      : null,
    data: { health: { status: health.status, ms: health.ms }, detailed: { status: detailed.status, body: detailed.body }, metrics: { status: metrics.status, ms: metrics.ms } },
  });
}

/** Common first check 2: configuration and migrations, as the doctor sees them and as the server reports them. */
export function configurationCheck(ctx: DoctorContext): CheckResult {
  const c = ctx.config;
  const bg = component(ctx, 'background_tasks');
  const dbc = component(ctx, 'database');
  const serverMode = (bg?.details?.runner_mode as string | undefined) ?? null;
  const evidence = [
    `JOB_RUNNER_MODE: ${c.runnerMode} here${serverMode ? `, ${serverMode} on the server${serverMode !== c.runnerMode ? ' (differs: section B follows the server)' : ''}` : ''}`,
    `DATABASE_URL: ${c.databaseUrl ? redactUrl(c.databaseUrl) : `unset (embedded PGlite under ${c.dataDir})`}${ctx.db ? ` — read ${ctx.db.via === 'server' ? 'through the server that holds it' : 'directly'}` : ''}`,
    ...(dbc?.details?.location ? [`the server's database: ${String(dbc.details.location)}`] : []),
    `REDIS_URL: ${c.redisUrl ? redactUrl(c.redisUrl) : 'unset'}`,
    ctx.migrations
      ? `migrations: applied head ${ctx.migrations.current ?? 'none'}, this version's head ${ctx.migrations.head}${ctx.migrations.pending.length ? `, ${ctx.migrations.pending.length} pending` : ''}${ctx.migrations.unknown.length ? `, ${ctx.migrations.unknown.length} unknown to this version` : ''}`
      : `migrations: not read (${ctx.migrationsError ?? ctx.dbError ?? 'no database'})`,
    `SLO definitions: ${ctx.slo.source}`,
  ];
  return check('common', {
    id: 'common.configuration',
    step: 'common.2',
    title: 'Recent changes: JOB_RUNNER_MODE, DATABASE_URL, REDIS_URL, migrations',
    status: 'ok',
    summary: `JOB_RUNNER_MODE=${serverMode ?? c.runnerMode}, database ${c.databaseUrl ? 'PostgreSQL' : 'embedded'}, Redis ${c.redisUrl ? 'set' : 'unset'}; migration mismatches are judged in A.migrations`,
    evidence,
    data: { runner_mode: { doctor: c.runnerMode, server: serverMode }, migrations: ctx.migrations },
  });
}

/** Common first check 3: where the logs are (the doctor cannot read them; it says where to look). */
export function logsCheck(ctx: DoctorContext): CheckResult {
  const evidence = [
    'API: one JSON line per request on the stdout of `evalops serve` (`method`, `path`, `route`, `status`, `duration_ms`, `request_id`); a 5xx answer\'s `error.error_id` appears in exactly one error line with its stack: grep \'"error_id":"<id>"\'',
    ...(ctx.runnerMode === 'queue' ? ['workers: JSON lines on the stdout of each `evalops worker`, errors with stacks on its stderr; `evalops workers ping` lists their hosts and pids'] : []),
  ];
  return check('common', { id: 'common.logs', step: 'common.3', title: 'Logs', status: 'ok', summary: 'where to read the logs (the doctor does not read them)', evidence });
}

/** The 5xx share of the last 5 minutes from request_counts, judged like the page alert's short window. */
export async function errorRatioCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'A.error_ratio', step: 'A', title: '5xx share of the last 5 minutes (every API instance)' };
  if (!ctx.db) return check('A', { ...base, status: 'skipped', summary: `cannot read request_counts: ${ctx.dbError}` });
  let rows: Array<Record<string, unknown>>;
  try {
    rows = rowsOf(await ctx.db.read(`SELECT route_class, status_code, sum(requests)::float8 AS n FROM request_counts WHERE minute > ${secondsAgo(300)} GROUP BY 1, 2 ORDER BY 1, 2`));
  } catch (err) {
    return check('A', { ...base, status: 'skipped', summary: `cannot read request_counts: ${(err as Error).message}` });
  }
  const slo = sloOfKind(ctx, 'api_availability');
  const pageBurn = BURN_RATE_ALERTS[0]!.burnRate;
  const threshold = pageBurn * slo.errorBudget;
  const total = rows.reduce((a, r) => a + num(r.n), 0);
  const errorRows = rows.filter((r) => num(r.status_code) >= 500);
  const errors = errorRows.reduce((a, r) => a + num(r.n), 0);
  const evidence = [
    `${errors} of ${total} requests answered 5xx in the last 5 minutes${total ? ` (${pct(errors / total)})` : ''}; a page fires above ${pct(threshold)} (${pageBurn}x the ${pct(slo.errorBudget)} budget) with at least ${slo.minEvents} requests`,
    ...errorRows.map((r) => `  ${routeClassLabel(String(r.route_class))}: ${num(r.n)} × ${num(r.status_code)}`),
  ];
  if (total < slo.minEvents) {
    return check('A', { ...base, status: 'ok', summary: `too little traffic to judge: ${total} requests in the last 5 minutes (fewer than ${slo.minEvents})`, evidence });
  }
  const ratio = errors / total;
  const burning = ratio > threshold;
  return check('A', {
    ...base,
    status: burning ? 'action' : 'ok',
    summary: `${pct(ratio)} of ${total} requests answered 5xx in the last 5 minutes${burning ? `, above ${pct(threshold)}` : ''}`,
    evidence,
    next_step: burning
      ? 'find the failing component in A.database, A.redis and A.background_tasks; the error_id of a 5xx answer finds its log line (common check 3). Mitigate now if needed: limit traffic at the load balancer or roll back to the last stable version'
      : null,
    data: { total, errors, ratio, threshold, by_route: rows.map((r) => ({ route_class: r.route_class, status_code: num(r.status_code), requests: num(r.n) })) },
  });
}

/** A.1/A.2: the database, as the server probes it and as the doctor reaches it. */
export function databaseCheck(ctx: DoctorContext): CheckResult {
  const c = component(ctx, 'database');
  const evidence: string[] = [];
  const problems: string[] = [];
  if (c) {
    evidence.push(`/health/detailed database: ${c.status}${c.message ? `: ${c.message}` : ''}`);
    if (c.status !== 'healthy') problems.push(`the server's database is ${c.status}${c.message ? `: ${c.message}` : ''}`);
  } else evidence.push('/health/detailed did not answer: the server\'s own view is unknown');
  if (ctx.db) evidence.push(`the doctor reads ${ctx.db.location}`);
  else {
    evidence.push(`the doctor cannot reach the database: ${ctx.dbError}`);
    problems.push(`cannot reach the database: ${ctx.dbError}`);
  }
  return check('A', {
    id: 'A.database',
    step: 'A.1-A.2',
    title: 'Database: /health/detailed and a connection from here',
    status: problems.length ? 'action' : 'ok',
    summary: problems.length ? problems.join('; ') : 'the database answers the server and the doctor',
    evidence,
    next_step: problems.length
      ? 'check the endpoint and credentials (`evalops config` shows the URL in use; `evalops sql "SELECT 1"` tries it), then `evalops migrate current` for a migration mismatch. When the database answers again the service recovers by itself'
      : null,
    data: { server: c, doctor: ctx.db ? { location: ctx.db.location, via: ctx.db.via } : { error: ctx.dbError } },
  });
}

/** A.1/A.3: Redis, as the server probes it and as the doctor reaches it. */
export async function redisCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'A.redis', step: 'A.1, A.3', title: 'Redis: /health/detailed and a PING from here' };
  const c = component(ctx, 'redis');
  if (!ctx.config.redisUrl && (!c || c.status === 'disabled')) {
    return check('A', { ...base, status: 'ok', summary: 'REDIS_URL is not set: nothing uses Redis', evidence: c ? [`/health/detailed redis: ${c.status}`] : [] });
  }
  const evidence: string[] = [];
  const problems: string[] = [];
  if (c) {
    evidence.push(`/health/detailed redis: ${c.status}${c.message ? `: ${c.message}` : ''}`);
    if (c.status === 'degraded' || c.status === 'unhealthy') problems.push(`the server's Redis is ${c.status}${c.message ? `: ${c.message}` : ''}`);
  }
  let ping = null;
  if (ctx.config.redisUrl) {
    ping = await pingRedis(ctx.config.redisUrl, ctx.timeoutMs);
    if (ping.ok) evidence.push(`PING ${redactUrl(ctx.config.redisUrl)} from here: PONG in ${ping.latencyMs} ms (maxmemory-policy ${ping.maxmemoryPolicy ?? 'unreadable'})`);
    else {
      evidence.push(`PING ${redactUrl(ctx.config.redisUrl)} from here failed: ${ping.error}`);
      problems.push(`cannot reach Redis at ${redactUrl(ctx.config.redisUrl)}: ${ping.error}`);
    }
  }
  const queue = ctx.runnerMode === 'queue';
  return check('A', {
    ...base,
    status: problems.length ? 'action' : 'ok',
    summary: problems.length ? problems.join('; ') : 'Redis answers the server and the doctor',
    evidence,
    next_step: problems.length
      ? `check the Redis process and the network (\`redis-cli -u "$REDIS_URL" ping\`)${queue ? '; in queue mode jobs wait in the jobs table meanwhile and are enqueued again when Redis is back: then check the workers\' broker connection with `evalops workers ping` (B.3)' : '; in inprocess mode only the shared rate limits use it'}`
      : null,
    data: { server: c, doctor: ping },
  });
}

/** A.1: background_tasks in /health/detailed. */
export function backgroundTasksCheck(ctx: DoctorContext): CheckResult {
  const c = component(ctx, 'background_tasks');
  const base = { id: 'A.background_tasks', step: 'A.1', title: 'background_tasks in /health/detailed' };
  if (!c) return check('A', { ...base, status: 'skipped', summary: '/health/detailed did not answer' });
  const ok = c.status === 'healthy';
  const d = c.details ?? {};
  return check('A', {
    ...base,
    status: ok ? 'ok' : 'action',
    summary: `background_tasks ${c.status}${c.message ? `: ${c.message}` : ''}`,
    evidence: [`runner ${String(d.runner_mode ?? '?')}, queued ${String(d.queued ?? '?')}, running ${String(d.running ?? '?')}, oldest queued ${d.oldest_queued_age_ms === null || d.oldest_queued_age_ms === undefined ? 'none' : `${Math.round(Number(d.oldest_queued_age_ms) / 1000)} s`}, failed in the last hour ${String(d.failed_last_hour ?? '?')}`],
    next_step: ok ? null : 'follow section B (worker ping, backlog, failed jobs); a stopped in-process runner needs the API process restarted; in queue mode start `evalops worker`',
    data: c,
  });
}

/** A.2: applied migrations against this version's. */
export function migrationsCheck(ctx: DoctorContext): CheckResult {
  const base = { id: 'A.migrations', step: 'A.2', title: 'Migration mismatch (`evalops migrate current`)' };
  const m = ctx.migrations ?? ((component(ctx, 'database')?.details?.migrations as { current: string | null; head: string; pending: string[]; unknown: string[] } | undefined) ?? null);
  if (!m) return check('A', { ...base, status: 'skipped', summary: `cannot read the applied migrations: ${ctx.migrationsError ?? ctx.dbError ?? '/health/detailed has none'}` });
  const evidence = [`applied head ${m.current ?? 'none'}; this version's head ${m.head}`, ...m.pending.map((p) => `pending: ${p}`), ...m.unknown.map((u) => `applied but unknown to this version: ${u}`)];
  if (m.pending.length) {
    return check('A', { ...base, status: 'action', summary: `${m.pending.length} migration(s) pending`, evidence, next_step: 'run `evalops migrate up` (once per release, before starting the new version), then `evalops migrate current` exits 0', data: m });
  }
  if (m.unknown.length) {
    return check('A', {
      ...base,
      status: 'action',
      summary: `the database has ${m.unknown.length} migration(s) this version does not know: a newer version ran against it`,
      evidence,
      next_step: 'a rolled-back binary is running against a migrated database: roll forward to the version that migrated it, or confirm that this version tolerates the newer schema',
      data: m,
    });
  }
  return check('A', { ...base, status: 'ok', summary: `at head (${m.head})`, evidence, data: m });
}

/** Each SLO of `section`: a burn-rate alert that would fire now is a finding. */
export function sloBurnCheck(ctx: DoctorContext, section: DoctorSection & ('A' | 'B' | 'C')): CheckResult {
  const base = { id: `${section}.slo_burn`, step: section, title: 'SLO burn-rate alerts (`evalops slo`)' };
  if (!ctx.sloStatus) return check(section, { ...base, status: 'skipped', summary: `cannot measure the SLOs: ${ctx.sloError ?? ctx.dbError ?? 'the database could not be read'}` });
  const slos = ctx.sloStatus.slos.filter((s) => s.runbook_section === section);
  if (slos.length === 0) return check(section, { ...base, status: 'skipped', summary: `no SLO in ${ctx.slo.source} points at runbook section ${section}` });
  const firing = slos.filter((s) => s.report.firing !== 'none');
  return check(section, {
    ...base,
    status: firing.length ? 'action' : 'ok',
    summary: firing.length
      ? firing.map((s) => `${s.name}: ${s.report.firing.toUpperCase()} alert would fire now`).join('; ')
      : slos.map((s) => `${s.name}: no alert firing${s.report.budget.remaining === null ? ' (too little traffic in the window)' : `, ${pct(s.report.budget.remaining)} of the error budget left`}`).join('; '),
    evidence: slos.flatMap((s) => formatSloReport(s.report).split('\n')),
    next_step: firing.length ? `the checks of this section say why; \`evalops incident start --severity ${firing.some((s) => s.report.firing === 'page') ? 'P1' : 'P2'} --summary "..."\` opens the incident with these figures` : null,
    data: slos.map((s) => ({ name: s.name, firing: s.report.firing, budget_remaining: s.report.budget.remaining, alerts: s.report.alerts })),
  });
}
