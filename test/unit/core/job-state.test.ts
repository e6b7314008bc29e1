import { describe, expect, it } from 'vitest';
import { JOB_STATUSES } from '../../../src/db/schema.ts';
import { canTransition, retryDelayMs, sourcesOf, TRANSITIONS } from '../../../src/jobs/job-state.ts';

describe('job state machine', () => {
  it('allows exactly the documented transitions', () => {
    const allowed = JOB_STATUSES.flatMap((from) => JOB_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`));
    expect(allowed.sort()).toEqual(
      ['queued->running', 'queued->cancelled', 'running->succeeded', 'running->failed', 'running->cancelled', 'running->queued', 'failed->queued', 'cancelled->queued'].sort(),
    );
    expect(TRANSITIONS.succeeded).toEqual([]);
  });

  it('names the sources of each target status', () => {
    expect(sourcesOf('queued').sort()).toEqual(['cancelled', 'failed', 'running']);
    expect(sourcesOf('running')).toEqual(['queued']);
  });

  it('backs off exponentially with jitter in the upper half, capped', () => {
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(retryDelayMs(3, 1000, 60_000, () => 1)).toBe(4000);
    expect(retryDelayMs(20, 1000, 60_000, () => 1)).toBe(60_000);
    expect(retryDelayMs(20, 1000, 60_000, () => 0)).toBe(30_000);
  });
});
