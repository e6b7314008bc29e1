import type { Config } from '../config/config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import type { HandlerRegistry } from './handler-registry.ts';
import type { JobRunner } from './job-runner.ts';
import { InProcessRunner } from './runners/inprocess-runner.ts';

/** Picks the runner for JOB_RUNNER_MODE. */
export function createRunner(config: Config, deps: { database: DatabaseHandle; registry: HandlerRegistry; logger: Logger; metrics: Metrics }): JobRunner {
  switch (config.runnerMode) {
    case 'inprocess':
      return new InProcessRunner({ ...deps, ...config.jobs });
  }
}
