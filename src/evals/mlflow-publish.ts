import { flattenParams, type MlflowMetric } from './mlflow-batching.ts';
import type { MlflowClient } from './mlflow-client.ts';

/**
 * Publishes a finished evaluation run to MLflow in the order a reader of the MLflow UI needs it:
 * experiment (created if missing), run tagged with the commit and the evalops run id, params from
 * run_metadata, metrics from the summary, the run's files as artifacts, and the final status.
 */

export interface PublishArtifact {
  /** Path under the run's artifacts, e.g. `results.jsonl`. */
  path: string;
  filePath: string;
  contentType?: string;
}

export interface PublishRunInput {
  experimentName: string;
  runName: string;
  /** The run's validated run_metadata (must hold run_id and commit_sha). */
  metadata: { run_id: string; commit_sha: string; [key: string]: unknown };
  /** Numeric figures of the summary, e.g. from `flattenMetrics(summary)`. */
  metrics: MlflowMetric[];
  artifacts: PublishArtifact[];
  status: 'FINISHED' | 'FAILED';
}

export interface PublishedRun {
  experimentId: string;
  runId: string;
}

/** MLflow metric keys allow letters, digits, `_`, `-`, `.`, ` ` and `/`; anything else becomes `_`. */
export function metricKey(path: string): string {
  return path.replace(/[^A-Za-z0-9_\-. /]/g, '_');
}

/** Every finite number of a nested summary as a metric keyed by its dotted path (`scorers.exact.pass_rate`). */
export function flattenMetrics(summary: Record<string, unknown>, timestamp: number = Date.now(), prefix = ''): MlflowMetric[] {
  const out: MlflowMetric[] = [];
  for (const key of Object.keys(summary).sort()) {
    const value = summary[key];
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof value === 'number' && Number.isFinite(value)) out.push({ key: metricKey(path), value, timestamp, step: 0 });
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.push(...flattenMetrics(value as Record<string, unknown>, timestamp, path));
    }
  }
  return out;
}

/**
 * Creates the MLflow run and logs everything. When a step after the run's creation fails, the run
 * is marked FAILED (best effort) before the error is rethrown, so no run stays RUNNING forever.
 */
export async function publishRunToMlflow(client: MlflowClient, input: PublishRunInput): Promise<PublishedRun> {
  const experimentId = await client.getOrCreateExperiment(input.experimentName);
  const run = await client.createRun({
    experimentId,
    runName: input.runName,
    commitSha: input.metadata.commit_sha,
    evalopsRunId: input.metadata.run_id,
  });
  try {
    const tags: Record<string, string> = {};
    for (const key of ['prompt_version', 'data_snapshot_id', 'mode'] as const) {
      const value = input.metadata[key];
      if (typeof value === 'string') tags[`evalops.${key}`] = value;
    }
    await client.logBatch(run.runId, { params: flattenParams(input.metadata), metrics: input.metrics, tags });
    for (const artifact of input.artifacts) {
      await client.uploadArtifact(run, artifact.path, { filePath: artifact.filePath }, artifact.contentType);
    }
    await client.setTerminated(run.runId, input.status);
  } catch (error) {
    await client.setTerminated(run.runId, 'FAILED').catch(() => undefined);
    throw error;
  }
  return { experimentId: run.experimentId, runId: run.runId };
}
