import type { Config } from '../config/config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../obs/logger.ts';
import type { Metrics } from '../obs/metrics.ts';
import type { JobDispatcher } from './dispatch.ts';
import type { HandlerRegistry } from './handler-registry.ts';
import type { JobRunner } from './job-runner.ts';
import { BullmqDispatchRunner } from './runners/bullmq-dispatch-runner.ts';
import { InProcessRunner } from './runners/inprocess-runner.ts';

/** Picks the runner for JOB_RUNNER_MODE. */
export function createRunner(config: Config, deps: { database: DatabaseHandle; registry: HandlerRegistry; logger: Logger; metrics: Metrics }): JobRunner {
  switch (config.runnerMode) {
    case 'inprocess':
      return new InProcessRunner({ ...deps, ...config.jobs });
    case 'queue':
      // The API only dispatches; `evalops worker` processes run the jobs. Config guarantees REDIS_URL.
      return new BullmqDispatchRunner({ ...deps, redisUrl: config.redisUrl!, prefix: config.queue.prefix, reconcileMs: config.queue.reconcileMs, leaseMs: config.jobs.leaseMs });
  }
}

/** The dispatcher JobService hands queued rows to: the runner itself (the broker's in queue mode, the in-process one's wake-up). */
export function dispatcherOf(runner: JobRunner): JobDispatcher | undefined {
  return runner instanceof BullmqDispatchRunner || runner instanceof InProcessRunner ? runner : undefined;
}
