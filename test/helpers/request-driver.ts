import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';

/** One request sent by drive(): what it was, when it left, how long its answer took and what it was. */
export interface Outcome {
  kind: 'list' | 'get' | 'submit' | 'batch';
  method: string;
  path: string;
  startedAt: number;
  ms: number;
  status: number | 'no answer';
  body: any;
}

export interface DriveOptions {
  baseUrl: string;
  /** A job that exists, for the reads by id. */
  knownJobId: string;
  ratePerSecond: number;
  durationMs: number;
  /** Called before each request with the time since the start: where a test pauses and resumes a proxy. */
  onTick?: (elapsedMs: number) => void;
}

/** An onTick for drive(): pauses the proxy at `startMs` and resumes it `lengthMs` later, once each. */
export function partitionWindow(proxy: { pause(): void; resume(): void }, startMs: number, lengthMs: number): (elapsedMs: number) => void {
  let paused = false;
  let resumed = false;
  return (elapsed) => {
    if (!paused && elapsed >= startMs) {
      paused = true;
      proxy.pause();
    }
    if (!resumed && elapsed >= startMs + lengthMs) {
      resumed = true;
      proxy.resume();
    }
  };
}

/** The job ids a submit or a batch submit was answered with. */
export function acceptedJobIds(outcomes: Outcome[]): string[] {
  return outcomes
    .filter((o) => o.status === 202)
    .flatMap((o) => (o.kind === 'batch' ? (o.body.jobs as Array<{ job_id: string }>).map((j) => j.job_id) : o.kind === 'submit' ? [o.body.job_id as string] : []));
}

/**
 * Sends mixed reads, submits and batch submits of two jobs (each job with an idempotency key of its own) at a steady rate
 * for `durationMs`, and measures how many are in flight at once. Every request gives up after 15 s.
 */
export async function drive(options: DriveOptions): Promise<{ outcomes: Outcome[]; maxInFlight: number }> {
  const outcomes: Outcome[] = [];
  const pending: Array<Promise<void>> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const started = Date.now();
  for (let i = 0; Date.now() - started < options.durationMs; i++) {
    options.onTick?.(Date.now() - started);
    const kind = (['list', 'get', 'submit', 'list', 'get', 'batch'] as const)[i % 6]!;
    const method = kind === 'submit' || kind === 'batch' ? 'POST' : 'GET';
    const path = { list: '/v1/jobs?limit=5', get: `/v1/jobs/${options.knownJobId}`, submit: '/v1/jobs', batch: '/v1/jobs/batch' }[kind];
    const job = () => ({ type: 'noop', idempotency_key: `drive-${randomUUID()}` });
    const payload = kind === 'submit' ? job() : kind === 'batch' ? { jobs: [job(), job()] } : undefined;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const t0 = Date.now();
    pending.push(
      (async () => {
        let status: Outcome['status'] = 'no answer';
        let body: any = null;
        try {
          const res = await fetch(`${options.baseUrl}${path}`, {
            method,
            headers: payload ? { 'content-type': 'application/json' } : {},
            ...(payload ? { body: JSON.stringify(payload) } : {}),
            signal: AbortSignal.timeout(15_000),
          });
          status = res.status;
          body = await res.json().catch(() => null);
        } catch (err) {
          body = (err as Error).message;
        } finally {
          inFlight--;
        }
        outcomes.push({ kind, method, path: path.split('?')[0]!, startedAt: t0 - started, ms: Date.now() - t0, status, body });
      })(),
    );
    await new Promise((r) => setTimeout(r, 1000 / options.ratePerSecond));
  }
  await Promise.all(pending);
  return { outcomes, maxInFlight };
}

/** One line on the load: count, slowest answer, most in flight, answers by status. */
export function summarize(outcomes: Outcome[], maxInFlight: number): string {
  const byStatus: Record<string, number> = {};
  for (const o of outcomes) byStatus[String(o.status)] = (byStatus[String(o.status)] ?? 0) + 1;
  return `${outcomes.length} requests; slowest ${Math.max(...outcomes.map((o) => o.ms))} ms; max in flight ${maxInFlight}; by status ${JSON.stringify(byStatus)}`;
}

/**
 * Every request answered within `limitMs`; every answer the normal one or 503 UNAVAILABLE whose
 * error_id is in exactly one log line naming its path, method and status.
 */
export function expectBoundedAnswers(outcomes: Outcome[], maxInFlight: number, limitMs: number, logs: Array<Record<string, unknown>>): void {
  const summary = summarize(outcomes, maxInFlight);
  const slow = outcomes.filter((o) => o.status === 'no answer' || o.ms >= limitMs);
  expect(slow.map((o) => `${o.method} ${o.path} at ${o.startedAt} ms: ${o.status} after ${o.ms} ms`), summary).toEqual([]);
  for (const o of outcomes.filter((o) => o.status !== 200 && o.status !== 202)) {
    expect(o.status, JSON.stringify(o)).toBe(503);
    expect(o.body?.error?.code, JSON.stringify(o.body)).toBe('UNAVAILABLE');
    const errorId = o.body.error.error_id;
    expect(errorId, JSON.stringify(o.body)).toBeTruthy();
    const lines = logs.filter((l) => l.error_id === errorId);
    expect(lines, `log lines for ${errorId}`).toHaveLength(1);
    expect(lines[0]).toMatchObject({ path: o.path, method: o.method, status: 503 });
  }
}
