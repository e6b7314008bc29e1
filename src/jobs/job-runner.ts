import type { RunnerMode } from '../config/config.ts';

/** What a runner reports about itself for /health/detailed. */
export interface RunnerStatus {
  mode: RunnerMode;
  /** True while it takes and runs jobs. */
  running: boolean;
  workerId: string;
  concurrency: number;
  active: number;
  lastError: string | null;
}

/**
 * Executes queued jobs. The job core owns this seam; implementations live in runners/ and the
 * factory picks one from JOB_RUNNER_MODE, so the core never imports a queue library.
 */
export interface JobRunner {
  readonly mode: RunnerMode;
  start(): Promise<void>;
  /** Stops taking jobs; running ones get `graceMs` to finish, then are aborted and handed back. */
  stop(graceMs: number): Promise<void>;
  status(): RunnerStatus;
}
