import type { Kysely } from 'kysely';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/schema.ts';
import type { JobHandler } from '../jobs/handler-registry.ts';
import type { Logger } from '../obs/logger.ts';
import { DatasetService } from './dataset-service.ts';
import { createEvaluationHandler } from './evaluation-handler.ts';
import { EvaluationService, type JobSubmitter } from './evaluation-service.ts';
import { PromptService } from './prompt-service.ts';
import { providerPolicyFromConfig } from './providers/provider-policy.ts';

/**
 * What the composition roots need from the evaluations: the services behind the HTTP routes, and
 * the job handlers every process that runs jobs registers (the API's in-process runner and
 * queue-mode workers alike build their registry with `evaluationJobHandlers`).
 */

export interface EvalServices {
  prompts: PromptService;
  datasets: DatasetService;
  evaluations: EvaluationService;
  uploadLimitBytes: number;
}

export function createEvalServices(db: Kysely<Database>, config: Config, jobs: JobSubmitter, limits?: { assertCanStartRun(cases: number): Promise<void> }): EvalServices {
  const prompts = new PromptService(db);
  return {
    prompts,
    datasets: new DatasetService(db, config.dataDir, { uploadIdleMs: config.evals.datasetUploadIdleMs }),
    evaluations: new EvaluationService(db, config.dataDir, prompts, jobs, limits, providerPolicyFromConfig(config)),
    uploadLimitBytes: config.evals.datasetUploadLimitBytes,
  };
}

/** The evaluation job handlers, for any HandlerRegistry. */
export function evaluationJobHandlers(deps: { db: Kysely<Database>; config: Config; logger: Logger }): JobHandler[] {
  return [
    createEvaluationHandler({
      db: deps.db,
      dataDir: deps.config.dataDir,
      logger: deps.logger,
      commitSha: deps.config.commitSha,
      mlflow: deps.config.mlflow,
      runTimeoutMs: deps.config.evals.runTimeoutMs,
      redisUrl: deps.config.redisUrl,
      redisPrefix: deps.config.queue.prefix,
      policy: providerPolicyFromConfig(deps.config),
    }),
  ];
}
