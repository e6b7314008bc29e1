import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { JOB_STATUSES, type Database, type JobStatus } from '../db/schema.ts';
import { conflict, notFound, validation } from '../errors.ts';
import { findSnapshot, readSnapshotFile } from './dataset-service.ts';
import { splitLines } from './dataset-parser.ts';
import { type EvaluationSpec, parseEvaluationRequest } from './evaluation-spec.ts';
import * as store from './evaluation-store.ts';
import type { PromptService } from './prompt-service.ts';
import { lookupVariable, templateVariables } from './prompt-template.ts';
import { type CaseQuery, type CasePage, CasePages } from './case-pages.ts';
import { attachTexts, type FlippedCaseWithTexts, idsWithTexts, positionsOf } from './compare-cases.ts';
import { type CaseResult, compareRuns, type RunComparison } from './run-compare.ts';
import { type FileInfo, listRunFiles, RESULTS_FILE, resolveRunFile, runDirectory } from './run-artifacts.ts';
import { seededSample } from './sampling.ts';
import { redactUrl } from './providers/provider.ts';
import { assertSpecAllowed, DEFAULT_PROVIDER_POLICY, type ProviderPolicy } from './providers/provider-policy.ts';

/** The job type of evaluation runs. */
export const EVALUATION_JOB_TYPE = 'evaluation';

/** The part of the job service evaluations need (JobService satisfies it). */
export interface JobSubmitter {
  /** `internal`: the evaluation job type is refused to every other caller (see JobHandler.internal). */
  submit(input: { type: string; payload?: unknown; idempotency_key?: string | undefined }, options: { internal: true }): Promise<{ job: { job_id: string } }>;
  cancel(jobId: string): Promise<{ status: JobStatus }>;
}

/** A run as the API shows it. */
export interface EvaluationRun {
  run_id: string;
  job_id: string | null;
  status: JobStatus;
  name: string | null;
  prompt_version: string;
  data_snapshot_id: string;
  provider: string;
  model: string;
  mode: 'live' | 'replay';
  seed: number;
  sample_size: number | null;
  concurrency: number;
  rerun_of: string | null;
  progress: unknown;
  thresholds_passed: boolean | null;
  summary: unknown;
  metadata: unknown;
  run_dir: string | null;
  files: FileInfo[] | null;
  mlflow: unknown;
  error_message: string | null;
  spec: EvaluationSpec;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A provider config as shown: its URL through the one redaction (the stored spec keeps it whole, to run). */
function shownProvider<T>(provider: T): T {
  if (provider === null || typeof provider !== 'object') return provider;
  const p = provider as Record<string, unknown>;
  return {
    ...p,
    ...(typeof p.base_url === 'string' ? { base_url: redactUrl(p.base_url) } : {}),
    ...(typeof p.url === 'string' ? { url: redactUrl(p.url) } : {}),
  } as T;
}

/** The spec as the API shows it: provider URLs (the run's and inline judges') without credentials. */
export function shownSpec(spec: EvaluationSpec): EvaluationSpec {
  return {
    ...spec,
    provider: shownProvider(spec.provider),
    scorers: (spec.scorers ?? []).map((s) => (s.type === 'llm_judge' ? { ...s, provider: shownProvider(s.provider) } : s)),
  };
}

export function toEvaluationRun(row: store.RunRow): EvaluationRun {
  const spec = shownSpec(row.spec as EvaluationSpec);
  return {
    run_id: row.run_id,
    job_id: row.job_id,
    status: row.status,
    name: spec.name ?? null,
    prompt_version: row.prompt_version,
    data_snapshot_id: row.data_snapshot_id,
    provider: row.provider_type,
    model: row.model,
    mode: row.mode,
    seed: Number(row.seed),
    sample_size: spec.sample_size ?? null,
    concurrency: spec.concurrency,
    rerun_of: row.rerun_of,
    progress: row.progress ?? null,
    thresholds_passed: row.thresholds_passed,
    summary: row.summary ?? null,
    metadata: row.metadata ?? null,
    run_dir: row.run_dir,
    files: (row.files as FileInfo[] | null) ?? null,
    mlflow: row.mlflow ?? null,
    error_message: row.error_message,
    spec,
    created_at: row.created_at.toISOString(),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
  };
}

export interface ResultsFilter {
  /** true: only passing cases; false: only failing ones (errored cases included). */
  pass?: boolean | undefined;
  /** true: only errored cases. */
  errored?: boolean | undefined;
  offset?: number | undefined;
  limit?: number | undefined;
}

/** Submits, reads, cancels, re-runs and compares evaluation runs. */
export class EvaluationService {
  /** Indexes of recently read results files (bounded, in memory): pages of cases at any depth. */
  private readonly casePages = new CasePages();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dataDir: string,
    private readonly prompts: PromptService,
    private readonly jobs: JobSubmitter,
    /** Runtime limits (cases per run, concurrent runs), checked before a run is recorded; none when absent. */
    private readonly limits?: { assertCanStartRun(cases: number): Promise<void> },
    /** What providers may read and call (PROVIDER_ENV_ALLOWLIST, PROVIDER_ALLOWED_HOSTS): a refused spec records nothing. */
    private readonly providerPolicy: ProviderPolicy = DEFAULT_PROVIDER_POLICY,
  ) {}

  /** Validates the request against the provider policy, the stored prompt and snapshot, records the run and queues its job. */
  async submit(input: unknown, rerunOf: string | null = null): Promise<EvaluationRun> {
    const spec = parseEvaluationRequest(input);
    assertSpecAllowed(this.providerPolicy, spec);
    const prompt = await this.prompts.get(spec.prompt_version);
    spec.prompt_version = prompt.prompt_version;
    const snapshot = await findSnapshot(this.db, spec.data_snapshot_id);
    if (!snapshot) {
      throw spec.data_snapshot_id.startsWith('sha256:')
        ? notFound('dataset snapshot', spec.data_snapshot_id)
        : validation(`data_snapshot_id: "${spec.data_snapshot_id}" is not a snapshot id (sha256: followed by 64 hex digits)`, { field: 'data_snapshot_id' });
    }
    const file = path.join(this.dataDir, snapshot.storage_path);
    if (!existsSync(file)) throw conflict(`data_snapshot_id: the file of snapshot ${snapshot.snapshot_id} is missing from DATA_DIR (${file}); upload the dataset again`);
    if (spec.sample_size !== null && spec.sample_size > snapshot.row_count) {
      throw validation(`sample_size: ${spec.sample_size} is more than the ${snapshot.row_count} rows of the snapshot`, { field: 'sample_size' });
    }
    await this.limits?.assertCanStartRun(spec.sample_size ?? snapshot.row_count);
    await this.checkVariables(prompt.prompt_version, prompt.messages, file, snapshot.row_count, spec);

    const runId = randomUUID();
    await store.insertRun(this.db, runId, spec, rerunOf);
    try {
      const { job } = await this.jobs.submit({ type: EVALUATION_JOB_TYPE, payload: { run_id: runId }, idempotency_key: `evaluation:${runId}` }, { internal: true });
      await store.attachJob(this.db, runId, job.job_id);
    } catch (err) {
      await store.deleteRun(this.db, runId).catch(() => undefined);
      throw err;
    }
    return this.get(runId);
  }

  /**
   * A template variable missing from a case is an input error: said at submission, naming the
   * variable and the first cases without it, rather than as one error line per case later.
   */
  private async checkVariables(version: string, messages: Parameters<typeof templateVariables>[0], file: string, rowCount: number, spec: EvaluationSpec): Promise<void> {
    const variables = templateVariables(messages);
    if (variables.length === 0) return;
    const chosen = spec.sample_size === null ? null : new Set(seededSample(rowCount, spec.sample_size, spec.seed));
    const missing = new Map<string, string[]>();
    let offending = 0;
    for await (const item of readSnapshotFile(file)) {
      if (chosen && !chosen.has(item.index)) continue;
      const absent = variables.filter((v) => !lookupVariable(item.row.vars, v).found);
      if (absent.length === 0) continue;
      offending += 1;
      for (const v of absent) {
        const ids = missing.get(v) ?? [];
        if (ids.length < 5) ids.push(item.row.id);
        missing.set(v, ids);
      }
    }
    if (missing.size === 0) return;
    const problems = [...missing].map(([v, ids]) => `prompt ${version} uses variable '${v}', missing from case ${ids.map((id) => `'${id}'`).join(', ')}${ids.length === 5 ? ', ...' : ''}`);
    throw validation(`prompt template is missing ${missing.size === 1 ? 'variable' : 'variables'} ${[...missing.keys()].map((v) => `'${v}'`).join(', ')} in ${offending} case(s): ${problems.join('; ')}`, {
      field: 'prompt_version',
      problems,
    });
  }

  async get(runId: string): Promise<EvaluationRun> {
    return toEvaluationRun(await this.row(runId));
  }

  async list(input: { status?: JobStatus[] | undefined; prompt_version?: string | undefined; cursor?: string | undefined; limit?: number | undefined }): Promise<{ runs: EvaluationRun[]; next_cursor: string | null }> {
    await store.reconcileRunsWithJobs(this.db);
    const limit = input.limit ?? 50;
    let after: string | undefined;
    if (input.cursor) {
      after = Buffer.from(input.cursor, 'base64url').toString('utf8');
      if (!UUID.test(after)) throw validation('cursor: not a cursor returned by this API', { field: 'cursor' });
    }
    const rows = await store.listRuns(this.db, { statuses: input.status, promptVersion: input.prompt_version, after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { runs: page.map(toEvaluationRun), next_cursor: rows.length > limit ? Buffer.from(page.at(-1)!.run_id).toString('base64url') : null };
  }

  /** Cancels the run's job: at once when queued, through its AbortSignal when running. */
  async cancel(runId: string): Promise<EvaluationRun> {
    const run = await this.row(runId);
    if (run.status !== 'queued' && run.status !== 'running') throw conflict(`evaluation run ${runId} is already ${run.status}`);
    if (run.job_id) await this.jobs.cancel(run.job_id);
    return this.get(runId);
  }

  /** Runs the same specification again (by default in replay mode): runbook step C.4. */
  async rerun(runId: string, options: { mode?: 'live' | 'replay' | undefined }): Promise<EvaluationRun> {
    const source = await this.row(runId);
    const spec = source.spec as EvaluationSpec;
    return this.submit(
      {
        prompt_version: spec.prompt_version,
        data_snapshot_id: spec.data_snapshot_id,
        provider: spec.provider,
        model: spec.model,
        params: spec.params,
        scorers: spec.scorers,
        seed: spec.seed,
        mode: options.mode ?? 'replay',
        ...(spec.sample_size !== null ? { sample_size: spec.sample_size } : {}),
        concurrency: spec.concurrency,
        ...(spec.thresholds ? { thresholds: spec.thresholds } : {}),
        ...(spec.name ? { name: spec.name } : {}),
      },
      runId,
    );
  }

  /** The run folder's files with sizes and sha256 (read from disk, so it also lists partial files). */
  async files(runId: string): Promise<FileInfo[]> {
    await this.row(runId);
    return listRunFiles(runDirectory(this.dataDir, runId));
  }

  /** The path of one file of the run, or NOT_FOUND; names that could leave the folder are refused. */
  async filePath(runId: string, name: string): Promise<string> {
    await this.row(runId);
    const file = await resolveRunFile(runDirectory(this.dataDir, runId), name);
    if (!file) throw notFound('file', `${name} in run ${runId}`);
    return file;
  }

  /** results.jsonl, filtered, as a stream of JSON lines. */
  async results(runId: string, filter: ResultsFilter): Promise<Readable> {
    return Readable.from(filterResults(await this.resultsFile(runId), filter));
  }

  /**
   * A page of a finished run's cases (filtered by outcome, searched), read through an index of the
   * results file so a deep page costs what the first one costs.
   */
  async cases(runId: string, query: CaseQuery): Promise<CasePage> {
    return this.casePages.page(runId, await this.resultsFile(runId), query);
  }

  /** The run's results.jsonl, or CONFLICT saying why there is none. */
  private async resultsFile(runId: string): Promise<string> {
    const run = await this.row(runId);
    const file = await resolveRunFile(runDirectory(this.dataDir, runId), RESULTS_FILE);
    if (!file) throw conflict(`evaluation run ${runId} is ${run.status} and has no ${RESULTS_FILE}${run.status === 'queued' || run.status === 'running' ? ' yet: it is written when the run finishes' : ''}`);
    return file;
  }

  /**
   * Case-by-case comparison of two finished runs (base -> head). With `outputs` (the default) the
   * first flipped cases carry their inputs and both runs' outputs (see compare-cases.ts).
   */
  async compare(
    baseId: string,
    headId: string,
    options: { maxFlipped?: number | undefined; outputs?: boolean | undefined } = {},
  ): Promise<{ base: EvaluationRun; head: EvaluationRun; same_dataset: boolean; comparison: Omit<RunComparison, 'flipped'> & { flipped: FlippedCaseWithTexts[] } }> {
    const [base, head] = [await this.get(baseId), await this.get(headId)];
    const resultsOf = async (run: EvaluationRun): Promise<string> => {
      const file = await resolveRunFile(runDirectory(this.dataDir, run.run_id), RESULTS_FILE);
      if (!file) throw conflict(`evaluation run ${run.run_id} is ${run.status} and has no ${RESULTS_FILE} to compare`);
      return file;
    };
    const load = async (run: EvaluationRun): Promise<CaseResult[]> => {
      const file = await resultsOf(run);
      const cases: CaseResult[] = [];
      for await (const item of splitLines(createReadStream(file))) {
        if ('tooLong' in item || item.text === '') continue;
        const r = JSON.parse(item.text) as { id: string; scores: Record<string, { score: number | null; pass: boolean }>; error: string | null };
        const scores: CaseResult['scores'] = {};
        for (const [name, s] of Object.entries(r.scores)) scores[name] = { score: s.score, pass: s.pass };
        cases.push({ id: r.id, scores });
      }
      return cases;
    };
    const [baseCases, headCases] = [await load(base), await load(head)];
    const comparison = compareRuns(baseCases, headCases, { maxFlipped: options.maxFlipped ?? 1000 });
    if (options.outputs === false || comparison.flipped.length === 0) return { base, head, same_dataset: base.data_snapshot_id === head.data_snapshot_id, comparison };
    const ids = idsWithTexts(comparison.flipped);
    const texts = async (run: EvaluationRun, cases: CaseResult[]) => {
      const positions = positionsOf(cases, ids);
      const records = await this.casePages.read(run.run_id, await resultsOf(run), [...positions.values()]);
      return new Map(records.map((r) => [r.id, r]));
    };
    const flipped = attachTexts(comparison.flipped, await texts(base, baseCases), await texts(head, headCases));
    return { base, head, same_dataset: base.data_snapshot_id === head.data_snapshot_id, comparison: { ...comparison, flipped } };
  }

  private async row(runId: string): Promise<store.RunRow> {
    if (!UUID.test(runId)) throw validation(`id: "${runId}" is not an evaluation run id (a UUID)`, { field: 'id' });
    const row = await store.findRunReconciled(this.db, runId);
    if (!row) throw notFound('evaluation run', runId);
    return row;
  }
}

async function* filterResults(file: string, filter: ResultsFilter): AsyncGenerator<string> {
  let skipped = 0;
  let sent = 0;
  const offset = filter.offset ?? 0;
  const limit = filter.limit ?? Number.POSITIVE_INFINITY;
  for await (const item of splitLines(createReadStream(file))) {
    if ('tooLong' in item || item.text === '') continue;
    if (filter.pass !== undefined || filter.errored !== undefined) {
      const r = JSON.parse(item.text) as { pass: boolean; error: string | null };
      if (filter.pass !== undefined && r.pass !== filter.pass) continue;
      if (filter.errored !== undefined && (r.error !== null) !== filter.errored) continue;
    }
    if (skipped < offset) {
      skipped += 1;
      continue;
    }
    if (sent >= limit) return;
    sent += 1;
    yield `${item.text}\n`;
  }
}

/** Parses `a,b` statuses for list filters. */
export function parseRunStatuses(value: string | undefined): JobStatus[] | undefined {
  if (!value) return undefined;
  const statuses = value.split(',').map((s) => s.trim());
  const bad = statuses.filter((s) => !(JOB_STATUSES as readonly string[]).includes(s));
  if (bad.length) throw validation(`status: ${bad.map((b) => `"${b}"`).join(', ')} is not a status; use ${JOB_STATUSES.join(', ')}`, { field: 'status' });
  return statuses as JobStatus[];
}
