import type { DispatchableJob } from './job-store.ts';

/**
 * Tells whoever runs jobs about rows that became `queued` (submitted or retried) or stopped being
 * so (cancelled while queued). The job core owns this seam: in queue mode the BullMQ runner
 * implements it (it hands the jobs to the broker), in inprocess mode the in-process runner (it
 * wakes itself; see `localWakeUp` for the other processes).
 *
 * The row is the record: a dispatcher never throws, and a job it failed to hand over stays `queued`
 * in the table, where the broker's reconciler or a runner's poll finds it.
 */
export interface JobDispatcher {
  /** Hands the jobs over, possibly in a batch written just after it returns (never rejects). */
  dispatch(jobs: readonly DispatchableJob[]): Promise<void>;
  /** Drops the broker's copy of a job cancelled while queued (never rejects). */
  withdraw(job: { job_id: string; type: string }): Promise<void>;
  /**
   * Present when dispatch() itself wakes the runner of this process: a submit's INSERT then tells
   * the table's trigger to send no NOTIFY (see migration 0005) and announces new rows to the other
   * processes as this says.
   */
  readonly localWakeUp?: LocalWakeUp;
}

/** How new rows are announced to other processes when this process's runner is woken directly. */
export interface LocalWakeUp {
  /** The NOTIFY payload this process's runner ignores (dispatch() already woke it). */
  readonly senderId: string;
  /** False when no other process can run jobs from this database (PGlite). */
  readonly notifyPeers: boolean;
  /** Reports a NOTIFY that failed; the other processes still find the rows at their next poll. */
  onNotifyError(err: unknown): void;
}
