import type { JobStatus } from '../db/schema.ts';

/**
 * The legal status transitions. Every UPDATE that changes a status is conditional on the row
 * being in one of the `from` states, so a racing writer loses cleanly instead of corrupting the row.
 */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'cancelled'],
  // back to queued: a retry after a failed attempt, a lost lease, or a job handed back at shutdown
  running: ['succeeded', 'failed', 'cancelled', 'queued'],
  succeeded: [],
  failed: ['queued'],
  cancelled: ['queued'],
};

/** The statuses from which `to` may be reached. */
export function sourcesOf(to: JobStatus): JobStatus[] {
  return (Object.keys(TRANSITIONS) as JobStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Delay before attempt `attempt + 1`: exponential from `baseMs`, capped, with full jitter on the upper half. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
