import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { JobHandler } from '../handler-registry.ts';

/** Does nothing and succeeds: for load tests and end-to-end health checks. */
export const noopHandler: JobHandler<Record<string, unknown>, { ok: true }> = {
  type: 'noop',
  description: 'does nothing and succeeds (load tests, health checks)',
  payloadSchema: z.record(z.string(), z.unknown()),
  async run() {
    return { ok: true };
  },
};

/** Waits `ms` milliseconds, ending early when cancelled. */
export const sleepHandler: JobHandler<{ ms: number }, { slept_ms: number }> = {
  type: 'sleep',
  description: 'waits `ms` milliseconds; honours cancellation',
  payloadSchema: z.object({ ms: z.number().int().min(0).max(86_400_000) }),
  timeoutMs: 86_400_000,
  async run({ ms }, ctx) {
    const started = Date.now();
    await sleep(ms, undefined, { signal: ctx.signal });
    return { slept_ms: Date.now() - started };
  },
};

export const BUILTIN_HANDLERS: JobHandler[] = [noopHandler, sleepHandler];
