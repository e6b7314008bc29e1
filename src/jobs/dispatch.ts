import type { DispatchableJob } from './job-store.ts';

/**
 * Tells a broker about rows that became `queued` (submitted or retried) or stopped being so
 * (cancelled while queued). The job core owns this seam; in queue mode the BullMQ runner implements
 * it, in inprocess mode there is none (the runner reads the table itself).
 *
 * The row is the record: a dispatcher never throws, and a job it failed to hand over stays `queued`
 * in the table, where the broker's reconciler finds it.
 */
export interface JobDispatcher {
  /** Hands the jobs to the broker, possibly in a batch written just after it returns (never rejects). */
  dispatch(jobs: readonly DispatchableJob[]): Promise<void>;
  /** Drops the broker's copy of a job cancelled while queued (never rejects). */
  withdraw(job: { job_id: string; type: string }): Promise<void>;
}
