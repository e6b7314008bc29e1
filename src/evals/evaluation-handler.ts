import path from 'node:path';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { EVALOPS_VERSION } from '../config/version.ts';
import type { Database } from '../db/schema.ts';
import { AppError, isRetryable } from '../errors.ts';
import { type JobContext, type JobHandler, UnrecoverableJobError } from '../jobs/handler-registry.ts';
import { JobAbortedError } from '../jobs/job-executor.ts';
import type { Logger } from '../obs/logger.ts';
import { findSnapshot } from './dataset-service.ts';
import { runEvaluation, runParallelism, type RunProgress } from './evaluation-runner.ts';
import type { EvaluationSpec } from './evaluation-spec.ts';
import { EVALUATION_JOB_TYPE } from './evaluation-service.ts';
import * as store from './evaluation-store.ts';
import { MlflowClient } from './mlflow-client.ts';
import { flattenMetrics, publishRunToMlflow } from './mlflow-publish.ts';
import { findPrompt } from './prompt-service.ts';
import type { ChatMessage } from './prompt-template.ts';
import { parsePromptVersion } from './prompt-template.ts';
import { createProvider, type ProviderConfig } from './providers/provider-factory.ts';
import { createNodeHttpFetch } from './providers/node-http-fetch.ts';
import { redactUrl } from './providers/provider.ts';
import type { ProviderPolicy } from './providers/provider-policy.ts';
import { RateGates } from './rate-gate.ts';
import { withResponseCache } from './response-cache.ts';
import { DatabaseResponseStore } from './response-store.ts';
import { ensureRunDirectory, type FileInfo, METADATA_FILE, RESULTS_FILE, removeTemporaryFiles, runDirectory, SUMMARY_FILE, writeFileAtomic } from './run-artifacts.ts';
import { type RunMetadata, resolveCommitSha, validateRunMetadata } from './run-metadata.ts';
import type { RunSummary } from './run-summary.ts';
import { createScorers, type ScorerConfig } from './scorers/scorer-factory.ts';

/**
 * The `evaluation` job: loads the run recorded by the evaluation service, evaluates it, writes and
 * validates its files, publishes to MLflow when configured, and records the outcome on the run row.
 * Registered by every process that runs jobs (the API's in-process runner, queue-mode workers).
 *
 * A crashed attempt is simply run again: answers already in the response record are reused, so
 * the provider is not asked twice for a case.
 */

export interface EvaluationHandlerDeps {
  db: Kysely<Database>;
  dataDir: string;
  logger: Logger;
  /** COMMIT_SHA from the configuration; else `git rev-parse HEAD` in `cwd`. */
  commitSha: string | undefined;
  mlflow?: { trackingUri: string; token?: string | undefined; username?: string | undefined; password?: string | undefined; experimentName: string } | undefined;
  runTimeoutMs: number;
  /** Where provider API keys are read (`api_key_env`). @defaultValue process.env */
  env?: Record<string, string | undefined>;
  /** Where git is asked for the commit. @defaultValue process.cwd() */
  cwd?: string;
  /** How providers make HTTP requests. @defaultValue a keep-alive node:http client (createNodeHttpFetch) */
  fetch?: typeof fetch;
  /** Where `requests_per_minute` limits are kept across processes; in this process's memory when unset. */
  redisUrl?: string | undefined;
  /** Prefix of the Redis keys (QUEUE_PREFIX). @defaultValue evalops */
  redisPrefix?: string;
  /**
   * What providers may read and call, from this process's configuration: checked again here because
   * a queue-mode worker's environment is not the API's. @defaultValue DEFAULT_PROVIDER_POLICY
   */
  policy?: ProviderPolicy;
}

export interface EvaluationJobResult {
  run_id: string;
  status: 'succeeded';
  cases: number;
  passed: number;
  errors: number;
  thresholds_passed: boolean;
  run_dir: string;
}

const PROGRESS_WRITE_MS = 1000;

/** Keeps a provider's configuration without credentials or header values, for run_metadata. */
function describeProviderConfig(config: ProviderConfig): Record<string, unknown> {
  switch (config.type) {
    case 'openai':
      return { type: 'openai', base_url: redactUrl(config.base_url), ...(config.api_key_env ? { api_key_env: config.api_key_env } : {}), ...(config.headers ? { header_names: Object.keys(config.headers).sort() } : {}) };
    case 'http':
      return { type: 'http', base_url: redactUrl(config.url), response_path: config.response_path, ...(config.headers ? { header_names: Object.keys(config.headers).sort() } : {}) };
    case 'echo':
      return { type: 'echo', ...(config.delay_ms ? { delay_ms: config.delay_ms } : {}) };
  }
}

function describeScorer(config: ScorerConfig): RunMetadata['scorers'][number] {
  if (config.type === 'llm_judge' && typeof config.provider === 'object') return { ...config, provider: describeProviderConfig(config.provider) };
  return { ...config };
}

/** The evaluation job handler. */
export function createEvaluationHandler(handlerDeps: EvaluationHandlerDeps): JobHandler<{ run_id: string }, EvaluationJobResult> {
  // One client (and its connection pools) per process, shared by every run.
  const deps = { ...handlerDeps, fetch: handlerDeps.fetch ?? createNodeHttpFetch(), localGates: new RateGates({ redisUrl: undefined, prefix: handlerDeps.redisPrefix ?? 'evalops' }) };
  return {
    type: EVALUATION_JOB_TYPE,
    description: 'runs an evaluation recorded by POST /v1/evaluations and writes its files',
    payloadSchema: z.object({ run_id: z.string().uuid() }),
    timeoutMs: deps.runTimeoutMs,
    // A run has its own routes and scope: a job of it is never submitted or acted on as a bare job.
    internal: { submitVia: 'POST /v1/evaluations', scope: 'evals:write' },
    run: (payload, ctx) => runJob(deps, payload.run_id, ctx),
  };
}

async function runJob(deps: EvaluationHandlerDeps & { localGates: RateGates }, runId: string, ctx: JobContext): Promise<EvaluationJobResult> {
  const { db } = deps;
  const log = ctx.log.child({ run_id: runId });
  const row = await store.findRun(db, runId);
  if (!row) throw new UnrecoverableJobError(`evaluation run ${runId} does not exist`);
  const spec = row.spec as EvaluationSpec;
  const runDir = runDirectory(deps.dataDir, runId);
  if (row.status === 'succeeded') {
    // A repeated delivery of a finished run: nothing to do.
    const summary = row.summary as RunSummary;
    return { run_id: runId, status: 'succeeded', cases: summary.cases, passed: summary.passed, errors: summary.errors, thresholds_passed: summary.thresholds.passed, run_dir: runDir };
  }

  const fail = async (message: string): Promise<never> => {
    await store.recordRunOutcome(db, runId, { status: 'failed', errorMessage: message });
    throw new UnrecoverableJobError(message);
  };

  await store.markRunStarted(db, runId, ctx.jobId, runDir);
  let gates: RateGates | undefined;
  let lastProgress: RunProgress | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  const flushProgress = async () => {
    progressTimer = undefined;
    if (lastProgress) await store.setRunProgress(db, runId, lastProgress).catch((err) => log.warn({ err }, 'could not record run progress'));
  };

  try {
    const ref = parsePromptVersion(spec.prompt_version);
    const prompt = ref ? await findPrompt(db, ref.name, ref.version) : undefined;
    if (!prompt) return await fail(`prompt version ${spec.prompt_version} does not exist`);
    const snapshot = await findSnapshot(db, spec.data_snapshot_id);
    if (!snapshot) return await fail(`dataset snapshot ${spec.data_snapshot_id} does not exist`);
    const snapshotFile = path.join(deps.dataDir, snapshot.storage_path);

    await ensureRunDirectory(runDir);
    await removeTemporaryFiles(runDir);

    const env = deps.env ?? process.env;
    // A Redis connection only for runs whose provider has a rate limit, closed when the run ends.
    if (deps.redisUrl && 'requests_per_minute' in spec.provider && spec.provider.requests_per_minute !== undefined) {
      gates = new RateGates({ redisUrl: deps.redisUrl, prefix: deps.redisPrefix ?? 'evalops' });
    }
    const gate = (gates ?? deps.localGates).gateFor(spec.provider);
    const providerDeps = {
      env,
      ...(deps.policy ? { policy: deps.policy } : {}),
      fetch: deps.fetch,
      ...(gate ? { gate } : {}),
      onRetry: (info: { attempt: number; delayMs: number; status: number | null; reason: string }) =>
        log.warn({ attempt: info.attempt, delay_ms: info.delayMs, upstream_status: info.status, reason: info.reason }, 'provider request failed; retrying'),
    };
    // A batch is sent when half the cases in progress wait on it, or when its window ends.
    const recorded = new DatabaseResponseStore(db, { maxBatch: Math.max(4, Math.floor(runParallelism(spec.mode, spec.concurrency) / 2)) });
    // The run's concurrency is the ceiling of requests in flight (a lower max_concurrency in the
    // provider config wins); the adaptive limiter moves below it on 429s.
    const providerConfig = spec.provider.type === 'echo' ? spec.provider : { ...spec.provider, max_concurrency: Math.min(spec.provider.max_concurrency ?? spec.concurrency, spec.concurrency) };
    const provider = createProvider(providerConfig, providerDeps);
    const scorers = createScorers(spec.scorers, {
      resolveProvider: (name) => (name === 'run' || name === spec.provider.type ? provider : undefined),
      providerDeps,
      wrapJudgeProvider: (judge) => withResponseCache(judge, recorded, spec.mode),
    });
    const params = { ...((prompt.params ?? {}) as Record<string, unknown>), ...spec.params };

    const output = await runEvaluation({
      runId,
      runDir,
      promptVersion: spec.prompt_version,
      messages: prompt.messages as ChatMessage[],
      snapshotId: snapshot.snapshot_id,
      snapshotFile,
      rowCount: Number(snapshot.row_count),
      provider: withResponseCache(provider, recorded, spec.mode),
      model: spec.model,
      params,
      seed: spec.seed,
      mode: spec.mode,
      sampleSize: spec.sample_size,
      concurrency: spec.concurrency,
      scorers,
      thresholds: spec.thresholds ?? undefined,
      signal: ctx.signal,
      onProgress: (p) => {
        ctx.progress(p);
        lastProgress = p;
        progressTimer ??= setTimeout(() => void flushProgress(), PROGRESS_WRITE_MS);
      },
    });
    if (progressTimer) clearTimeout(progressTimer);
    await flushProgress();

    const commit = await resolveCommitSha({ COMMIT_SHA: deps.commitSha }, deps.cwd ?? process.cwd());
    const metadata: RunMetadata = {
      schema_version: 1,
      run_id: runId,
      commit_sha: commit.commitSha,
      git_dirty: commit.dirty,
      prompt_version: spec.prompt_version,
      data_snapshot_id: spec.data_snapshot_id,
      seed: spec.seed,
      mode: spec.mode,
      started_at: output.startedAt.toISOString(),
      finished_at: output.finishedAt.toISOString(),
      provider: provider.describe(),
      provider_config: describeProviderConfig(spec.provider),
      model: spec.model,
      params,
      scorers: spec.scorers.map(describeScorer),
      dataset: { row_count: Number(snapshot.row_count), name: snapshot.name, source_format: snapshot.source_format },
      sample_size: spec.sample_size,
      concurrency: spec.concurrency,
      thresholds: spec.thresholds,
      rerun_of: row.rerun_of,
      results_sha256: output.files.find((f) => f.name === RESULTS_FILE)!.sha256,
      evalops_version: EVALOPS_VERSION,
      node_version: process.version,
    };
    const validation = validateRunMetadata(metadata);
    const metadataInfo = await writeFileAtomic(runDir, METADATA_FILE, `${JSON.stringify(metadata, null, 2)}\n`);
    const files: FileInfo[] = [...output.files, metadataInfo].sort((a, b) => a.name.localeCompare(b.name));
    if (!validation.ok) {
      const message = `${METADATA_FILE} failed validation (${validation.errors.join('; ')}); the run's files are kept in ${runDir} for inspection (evalops eval validate ${runDir})`;
      await store.recordRunOutcome(db, runId, { status: 'failed', errorMessage: message, metadata, summary: output.summary, files, thresholdsPassed: output.summary.thresholds.passed });
      throw new UnrecoverableJobError(message);
    }

    let mlflow: unknown = null;
    if (deps.mlflow) {
      const client = new MlflowClient({ trackingUri: deps.mlflow.trackingUri, token: deps.mlflow.token, username: deps.mlflow.username, password: deps.mlflow.password });
      try {
        const published = await publishRunToMlflow(client, {
          experimentName: deps.mlflow.experimentName,
          runName: spec.name ?? `${spec.prompt_version} ${runId.slice(0, 8)}`,
          metadata,
          metrics: flattenMetrics(output.summary as unknown as Record<string, unknown>),
          artifacts: [
            { path: RESULTS_FILE, filePath: path.join(runDir, RESULTS_FILE), contentType: 'application/x-ndjson' },
            { path: SUMMARY_FILE, filePath: path.join(runDir, SUMMARY_FILE), contentType: 'application/json' },
            { path: METADATA_FILE, filePath: path.join(runDir, METADATA_FILE), contentType: 'application/json' },
          ],
          status: 'FINISHED',
        });
        mlflow = { tracking_uri: client.uri, experiment_id: published.experimentId, run_id: published.runId };
      } catch (err) {
        const message = `publishing to MLflow failed: ${(err as Error).message}; the run's files are kept in ${runDir}`;
        await store.recordRunOutcome(db, runId, { status: 'failed', errorMessage: message, metadata, summary: output.summary, files, thresholdsPassed: output.summary.thresholds.passed });
        throw new UnrecoverableJobError(message);
      }
    }

    await store.recordRunOutcome(db, runId, { status: 'succeeded', errorMessage: null, metadata, summary: output.summary, files, thresholdsPassed: output.summary.thresholds.passed, mlflow });
    log.info({ cases: output.summary.cases, errors: output.summary.errors, passed: output.summary.passed, run_dir: runDir }, 'evaluation run succeeded');
    return {
      run_id: runId,
      status: 'succeeded',
      cases: output.summary.cases,
      passed: output.summary.passed,
      errors: output.summary.errors,
      thresholds_passed: output.summary.thresholds.passed,
      run_dir: runDir,
    };
  } catch (err) {
    if (progressTimer) clearTimeout(progressTimer);
    await recordFailure(db, runId, ctx, err, log);
    throw err instanceof AppError && err.status < 500 ? new UnrecoverableJobError(err.message) : err;
  } finally {
    await gates?.close();
  }
}

/** Records on the run row what the job executor is about to record on the job. */
async function recordFailure(db: Kysely<Database>, runId: string, ctx: JobContext, err: unknown, log: Logger): Promise<void> {
  try {
    if (err instanceof UnrecoverableJobError) return; // already recorded
    const reason = ctx.signal.aborted ? ctx.signal.reason : err;
    if (reason instanceof JobAbortedError) {
      if (reason.kind === 'cancelled') await store.recordRunOutcome(db, runId, { status: 'cancelled', errorMessage: `cancelled: ${reason.message}` });
      else if (reason.kind === 'timeout') await store.recordRunOutcome(db, runId, { status: 'failed', errorMessage: reason.message });
      else if (reason.kind === 'shutdown') await store.recordRunOutcome(db, runId, { status: 'queued', errorMessage: null });
      // lease-lost: another runner holds the job now; its attempt owns the row.
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    // A permanent failure (bad input, a run folder the host refuses) ends the run now: the job is not retried.
    if ((err instanceof AppError && err.status < 500) || !isRetryable(err)) await store.recordRunOutcome(db, runId, { status: 'failed', errorMessage: message });
    else await store.setRunError(db, runId, message);
  } catch (writeErr) {
    log.error({ err: writeErr }, 'could not record the outcome of an evaluation run');
  }
}
