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
  /**
   * Runners whose jobs run in other processes (queue mode) report those processes and the broker's
   * backlog here, for /health/detailed; bounded by the caller. Absent for the in-process runner.
   */
  inspect?(): Promise<RunnerInspection>;
}

/** What a runner with remote workers knows about them. */
export interface RunnerInspection {
  /** Workers that sent a heartbeat recently. */
  liveWorkers: number;
  /** Shown as they are under background_tasks.details. */
  details: Record<string, unknown>;
}
