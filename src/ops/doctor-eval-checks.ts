import { existsSync } from 'node:fs';
import { checkRunFolder } from '../evals/run-folder-check.ts';
import { RUN_METADATA_REQUIRED_KEYS, validateRunMetadata } from '../evals/run-metadata.ts';
import { type DoctorContext, sloOfKind } from './doctor-context.ts';
import { failureVerdict } from './doctor-job-checks.ts';
import { probeMlflow } from './doctor-probes.ts';
import { check, type CheckResult } from './doctor-types.ts';
import { isoOf, num, rowsOf } from './read-query.ts';

/** Section C of the runbook: evaluation run failures. */

export type RunFailureCause = 'run_metadata' | 'result_files' | 'mlflow' | 'inputs' | 'timeout' | 'cancelled' | 'other';

/** The cause of a failed run, from its error message. */
export function failureCause(status: string, message: string | null): RunFailureCause {
  const m = message ?? '';
  if (/run_metadata/.test(m)) return 'run_metadata';
  if (/publishing to MLflow failed|MLflow/.test(m)) return 'mlflow';
  if (/results\.jsonl|summary\.json|result file/.test(m)) return 'result_files';
  if (/does not exist/.test(m)) return 'inputs';
  if (/timed out/.test(m)) return 'timeout';
  if (status === 'cancelled' || /^cancelled/.test(m)) return 'cancelled';
  return 'other';
}

/** The validation errors `run_metadata.json failed validation (a; b); …` names. */
export function metadataErrorsInMessage(message: string | null): string[] {
  const match = /run_metadata\.json failed validation \((.*?)\); /.exec(message ?? '');
  return match ? match[1]!.split('; ').filter(Boolean) : [];
}

const NEXT_STEP: Record<RunFailureCause, string> = {
  run_metadata:
    'fix what produced the invalid keys (COMMIT_SHA must be a commit id; prompt_version, data_snapshot_id, seed and mode come from the run request), check the folder with `evalops eval validate <run_dir>`, then `evalops eval rerun <run_id>`',
  result_files: 'the run folder lost files: check the disk under DATA_DIR/runs (space, permissions) and `evalops eval validate <run_dir>`; re-run with `evalops eval rerun <run_id>`',
  mlflow: 'check MLFLOW_TRACKING_URI and its credentials and permissions (C.mlflow below); the files are kept, re-run once MLflow accepts them',
  inputs: 'the prompt version or dataset snapshot it names is gone: upload it again, then submit the evaluation again',
  timeout: 'the run exceeded EVAL_RUN_TIMEOUT_MS: sample fewer cases (sample_size) or raise the limit',
  cancelled: 'cancelled on request: the API log names who (`evaluation.cancelled` audit lines)',
  other: 'read the error (`evalops eval show <run_id>`); re-run with `evalops eval rerun <run_id>` once the cause is fixed',
};

interface RunRow {
  run_id: string;
  status: string;
  error_message: string | null;
  metadata: unknown;
  run_dir: string | null;
  prompt_version: string;
  mode: string;
  ended_at: string | null;
}

// A run whose job failed while its handler could not write (a crash, a lost lease) still says
// queued/running: the job is the record, so its status counts (as reconcileRunsWithJobs would set it).
const EFFECTIVE_STATUS = `CASE WHEN r.status IN ('queued', 'running') AND j.status IN ('failed', 'cancelled') THEN j.status ELSE r.status END`;
const EFFECTIVE_END = `coalesce(r.finished_at, CASE WHEN j.status IN ('failed', 'cancelled') THEN j.finished_at END)`;

/** C.1/C.2: evaluation runs that failed in the last hour, with their metadata errors and missing files. */
export async function failedRunsCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'C.failed_runs', step: 'C.0-C.2', title: 'Evaluation runs failed in the last hour: run_metadata errors, missing keys and files' };
  if (!ctx.db) return check('C', { ...base, status: 'skipped', summary: `cannot read evaluation_runs: ${ctx.dbError}` });
  const slo = sloOfKind(ctx, 'evaluation_success');
  const bad = slo.badStatuses.map((s) => `'${s}'`).join(', ');
  let ended = 0;
  let failed = 0;
  let runs: RunRow[];
  try {
    const counts = rowsOf(
      await ctx.db.read(`SELECT count(*) FILTER (WHERE s.status = 'succeeded')::float8 AS succeeded, count(*) FILTER (WHERE s.status IN (${bad}))::float8 AS bad
FROM (SELECT ${EFFECTIVE_STATUS} AS status, ${EFFECTIVE_END} AS ended_at FROM evaluation_runs r LEFT JOIN jobs j ON j.job_id = r.job_id) s
WHERE s.ended_at >= NOW() - INTERVAL '1 hour'`),
    )[0];
    failed = num(counts?.bad);
    ended = num(counts?.succeeded) + failed;
    runs = rowsOf(
      await ctx.db.read(`SELECT r.run_id, ${EFFECTIVE_STATUS} AS status, coalesce(r.error_message, j.error_message) AS error_message, r.metadata, r.run_dir, r.prompt_version, r.mode, ${EFFECTIVE_END} AS ended_at
FROM evaluation_runs r LEFT JOIN jobs j ON j.job_id = r.job_id
WHERE ${EFFECTIVE_STATUS} IN (${bad}) AND ${EFFECTIVE_END} >= NOW() - INTERVAL '1 hour'
ORDER BY ${EFFECTIVE_END} DESC
LIMIT 30`),
    ).map((r) => ({
      run_id: String(r.run_id),
      status: String(r.status),
      error_message: r.error_message === null || r.error_message === undefined ? null : String(r.error_message),
      metadata: r.metadata,
      run_dir: r.run_dir === null || r.run_dir === undefined ? null : String(r.run_dir),
      prompt_version: String(r.prompt_version),
      mode: String(r.mode),
      ended_at: isoOf(r.ended_at),
    }));
  } catch (err) {
    return check('C', { ...base, status: 'skipped', summary: `cannot read evaluation_runs: ${(err as Error).message}` });
  }
  const verdict = failureVerdict(ended, failed, slo.errorBudget, slo.minEvents, 'evaluation runs');
  const evidence: string[] = [];
  const details = [];
  const causes = new Map<RunFailureCause, number>();
  for (const run of runs) {
    const cause = failureCause(run.status, run.error_message);
    causes.set(cause, (causes.get(cause) ?? 0) + 1);
    const metadataErrors = new Set(metadataErrorsInMessage(run.error_message));
    if (run.metadata && typeof run.metadata === 'object') {
      const v = validateRunMetadata(run.metadata);
      if (!v.ok) for (const e of v.errors) metadataErrors.add(e);
    } else if (cause === 'run_metadata') metadataErrors.add(`no run_metadata recorded (required keys: ${RUN_METADATA_REQUIRED_KEYS.join(', ')})`);
    let files: string[] | null = null;
    let folder: string;
    if (run.run_dir && existsSync(run.run_dir)) {
      const folderCheck = await checkRunFolder(run.run_dir);
      files = folderCheck.problems.filter((p) => p.startsWith('missing result file'));
      folder = files.length ? files.join('; ') : 'result files present';
    } else folder = run.run_dir ? `run folder ${run.run_dir} is not on this machine (run the doctor where DATA_DIR is)` : 'no run folder (failed before starting)';
    evidence.push(`run ${run.run_id} (${run.prompt_version}, ${run.mode}) ${run.status} at ${run.ended_at ?? '?'}: ${(run.error_message ?? 'no error message').slice(0, 300)}`);
    if (metadataErrors.size) evidence.push(`  run_metadata: ${[...metadataErrors].join('; ')}`);
    evidence.push(`  files: ${folder}`);
    details.push({ run_id: run.run_id, status: run.status, cause, error_message: run.error_message, metadata_errors: [...metadataErrors], missing_files: files, run_dir: run.run_dir });
  }
  const ranked = [...causes].sort((a, b) => b[1] - a[1]);
  return check('C', {
    ...base,
    status: verdict.action ? 'action' : 'ok',
    summary: verdict.action ? `${verdict.reason}; causes: ${ranked.map(([c, n]) => `${n} × ${c}`).join(', ')}` : verdict.reason,
    evidence,
    next_step: verdict.action ? ranked.map(([c]) => `${c}: ${NEXT_STEP[c]}`).join('; ') : null,
    data: { ended, failed, runs: details },
  });
}

/** C.1: the latest succeeded runs of the last day still have their result files and a valid run_metadata. */
export async function resultFilesCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'C.result_files', step: 'C.1', title: 'Result files of the latest succeeded runs' };
  if (!ctx.db) return check('C', { ...base, status: 'skipped', summary: `cannot read evaluation_runs: ${ctx.dbError}` });
  let runs: Array<{ run_id: string; run_dir: string | null }>;
  try {
    runs = rowsOf(
      await ctx.db.read(`SELECT run_id, run_dir FROM evaluation_runs WHERE status = 'succeeded' AND finished_at >= NOW() - INTERVAL '24 hours' ORDER BY finished_at DESC LIMIT 5`),
    ).map((r) => ({ run_id: String(r.run_id), run_dir: r.run_dir === null || r.run_dir === undefined ? null : String(r.run_dir) }));
  } catch (err) {
    return check('C', { ...base, status: 'skipped', summary: `cannot read evaluation_runs: ${(err as Error).message}` });
  }
  if (runs.length === 0) return check('C', { ...base, status: 'ok', summary: 'no evaluation run succeeded in the last 24 hours' });
  const local = runs.filter((r) => r.run_dir && existsSync(r.run_dir));
  if (local.length === 0) {
    return check('C', { ...base, status: 'skipped', summary: `the folders of the ${runs.length} latest succeeded run(s) are not on this machine: run the doctor where DATA_DIR is` });
  }
  const evidence: string[] = [];
  const broken = [];
  for (const run of local) {
    const folder = await checkRunFolder(run.run_dir!);
    if (folder.ok) evidence.push(`run ${run.run_id}: ${folder.cases} cases, results.jsonl, summary.json and run_metadata.json valid`);
    else {
      broken.push({ run_id: run.run_id, run_dir: run.run_dir, problems: folder.problems });
      evidence.push(`run ${run.run_id} (${run.run_dir}): ${folder.problems.join('; ')}`);
    }
  }
  return check('C', {
    ...base,
    status: broken.length ? 'action' : 'ok',
    summary: broken.length ? `${broken.length} of the ${local.length} latest succeeded run(s) lost result files or have an invalid run_metadata` : `the ${local.length} latest succeeded run(s) have their files and a valid run_metadata`,
    evidence,
    next_step: broken.length ? `something changed the run folders after the runs: check the disk under DATA_DIR (space, cleanup jobs, permissions); \`evalops eval validate <run_dir>\` names each problem; re-run with \`evalops eval rerun ${broken[0]!.run_id}\`` : null,
    data: { checked: local.map((r) => r.run_id), broken },
  });
}

/** C.3: the MLflow tracking URI answers and accepts the credentials. */
export async function mlflowCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'C.mlflow', step: 'C.3', title: 'MLflow tracking URI and credentials' };
  const m = ctx.config.mlflow;
  if (!m) return check('C', { ...base, status: 'skipped', summary: 'MLFLOW_TRACKING_URI is not set here: runs are not published to MLflow' });
  const probe = await probeMlflow({ trackingUri: m.trackingUri, token: m.token, username: m.username, password: m.password, experimentName: m.experimentName }, ctx.timeoutMs);
  const auth = m.token ? 'a bearer token (MLFLOW_TRACKING_TOKEN)' : m.username || /\/\/[^/]*@/.test(m.trackingUri) ? 'basic auth' : 'no credentials';
  const evidence = [`GET ${probe.uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${m.experimentName} with ${auth} → ${probe.status ?? `no answer (${probe.message})`}${probe.errorCode ? ` ${probe.errorCode}` : ''}${probe.message && probe.status !== null ? `: ${probe.message}` : ''}`];
  if (!probe.reachable) {
    return check('C', { ...base, status: 'action', summary: `MLflow at ${probe.uri} cannot be reached: ${probe.message}`, evidence, next_step: 'check MLFLOW_TRACKING_URI and the network to the tracking server; runs fail at publishing until it answers', data: probe });
  }
  if (probe.status === 401 || probe.status === 403) {
    return check('C', {
      ...base,
      status: 'action',
      summary: `MLflow at ${probe.uri} refuses the credentials: ${probe.status}${probe.errorCode ? ` ${probe.errorCode}` : ''}`,
      evidence,
      next_step:
        probe.status === 401
          ? 'MLflow asks for credentials: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, for the API and the workers'
          : `the credentials lack permission: grant them EDIT on experiment "${m.experimentName}" (or create it), or use another token`,
      data: probe,
    });
  }
  if (!probe.authorised) {
    return check('C', { ...base, status: 'action', summary: `MLflow at ${probe.uri} answered ${probe.status}${probe.errorCode ? ` ${probe.errorCode}` : ''}`, evidence, next_step: 'check that MLFLOW_TRACKING_URI points at an MLflow tracking server (2.x REST API) and read its log', data: probe });
  }
  evidence.push(probe.experimentId ? `experiment "${m.experimentName}" exists (id ${probe.experimentId})` : `experiment "${m.experimentName}" does not exist yet: the first published run creates it`);
  evidence.push('a read proves reachability and authentication, not the write permission publishing needs: a run failing with 403 at publishing shows in C.failed_runs');
  return check('C', { ...base, status: 'ok', summary: `MLflow at ${probe.uri} answers and accepts the credentials`, evidence, data: probe });
}

interface ApiRun {
  run_id: string;
  status: string;
  error_message: string | null;
  files?: Array<{ name: string; sha256: string }> | null;
}

/** C.4 (only with --replay): re-run the latest succeeded run in replay mode and compare results.jsonl byte for byte. */
export async function replayCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = { id: 'C.replay', step: 'C.4', title: 'Re-run the latest run with the same inputs (replay) and compare' };
  if (!ctx.replay.enabled) return check('C', { ...base, status: 'skipped', summary: 'not asked: `evalops doctor --replay` re-runs the latest succeeded run in replay mode (it adds one evaluation run)' });
  if (!ctx.db) return check('C', { ...base, status: 'skipped', summary: `cannot find the latest run: ${ctx.dbError}` });
  let sourceId: string | undefined;
  try {
    sourceId = rowsOf(await ctx.db.read(`SELECT run_id FROM evaluation_runs WHERE status = 'succeeded' ORDER BY finished_at DESC LIMIT 1`))[0]?.run_id as string | undefined;
  } catch (err) {
    return check('C', { ...base, status: 'skipped', summary: `cannot find the latest run: ${(err as Error).message}` });
  }
  if (!sourceId) return check('C', { ...base, status: 'skipped', summary: 'no succeeded evaluation run to replay' });
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(ctx.apiKey ? { authorization: `Bearer ${ctx.apiKey}` } : {}) };
  const call = async (method: string, route: string, body?: unknown): Promise<ApiRun> => {
    const res = await fetch(`${ctx.url}${route}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(Math.max(ctx.timeoutMs, 10_000)) });
    const parsed = (await res.json().catch(() => ({}))) as ApiRun & { error?: { message?: string } };
    if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${parsed.error?.message ?? 'no message'}`);
    return parsed;
  };
  const hash = (run: ApiRun) => run.files?.find((f) => f.name === 'results.jsonl')?.sha256 ?? null;
  try {
    const source = await call('GET', `/v1/evaluations/${sourceId}`);
    const rerun = await call('POST', `/v1/evaluations/${sourceId}/rerun`, { mode: 'replay' });
    const deadline = Date.now() + ctx.replay.timeoutMs;
    let replayed = rerun;
    while (!['succeeded', 'failed', 'cancelled'].includes(replayed.status)) {
      if (Date.now() > deadline) {
        return check('C', { ...base, status: 'action', summary: `the replay ${rerun.run_id} of ${sourceId} did not finish within ${ctx.replay.timeoutMs} ms`, evidence: [`replay run ${rerun.run_id} is ${replayed.status}`], next_step: 'look at the backlog (B.backlog) and the workers (B.workers): is anything running evaluation jobs?' });
      }
      await new Promise((r) => setTimeout(r, 250));
      replayed = await call('GET', `/v1/evaluations/${rerun.run_id}`);
    }
    const evidence = [`results.jsonl of ${sourceId}: sha256 ${hash(source)}`, `results.jsonl of replay ${replayed.run_id}: ${replayed.status === 'succeeded' ? `sha256 ${hash(replayed)}` : `${replayed.status}: ${replayed.error_message}`}`];
    if (replayed.status !== 'succeeded') {
      return check('C', { ...base, status: 'action', summary: `the replay of ${sourceId} ${replayed.status}: ${replayed.error_message ?? 'no message'}`, evidence, next_step: 'the replay fails where the original succeeded: read its error (`evalops eval show <run_id>`); a missing recorded answer means the response record was cleared', data: { source: sourceId, replay: replayed.run_id } });
    }
    const same = hash(source) !== null && hash(source) === hash(replayed);
    return check('C', {
      ...base,
      status: same ? 'ok' : 'action',
      summary: same ? `replay ${replayed.run_id} reproduced ${sourceId} byte for byte` : `replay ${replayed.run_id} did NOT reproduce ${sourceId}`,
      evidence,
      next_step: same ? null : `compare them case by case with \`evalops eval compare ${sourceId} ${replayed.run_id}\`: a scorer or prompt rendering that is not deterministic, or a changed dataset file`,
      data: { source: sourceId, replay: replayed.run_id, same },
    });
  } catch (err) {
    return check('C', { ...base, status: 'action', summary: `cannot replay ${sourceId} through ${ctx.url}: ${(err as Error).message}`, next_step: 'the replay goes through the API: check --url, and EVALOPS_API_KEY (scope evals:write) when keys are required' });
  }
}
