import { expect } from 'vitest';
import { openDatabase } from '../../src/db/database.ts';
import type { TestDatabase } from './test-database.ts';

// The runbook's section-B queries, verbatim.
export const RUNBOOK_STATUS_QUERY = `SELECT status, COUNT(*)
FROM jobs
WHERE created_at >= NOW() - INTERVAL '1 hour'
GROUP BY status;`;

export const RUNBOOK_FAILED_SAMPLE_QUERY = `SELECT job_id, type, status, error_message, created_at
FROM jobs
WHERE created_at >= NOW() - INTERVAL '1 hour'
  AND status IN ('failed', 'cancelled')
ORDER BY created_at DESC
LIMIT 30;`;

/**
 * Known rows: in the last hour 3 succeeded, 2 failed, 1 cancelled, 1 queued; two hours ago 4 failed
 * (outside the runbook's window).
 */
export async function seedRunbookJobs(d: TestDatabase): Promise<void> {
  const handle = await openDatabase({ databaseUrl: d.databaseUrl, dataDir: d.dataDir, poolSize: 1 });
  const row = (n: number, status: string, minutesAgo: number, error: string | null) => ({
    job_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    // The queued row's type has no handler, so a running server leaves it queued.
    type: status === 'queued' ? 'export' : n % 2 ? 'noop' : 'sleep',
    status: status as 'queued',
    payload: '{}',
    max_attempts: 3,
    error_message: error,
    created_at: new Date(Date.now() - minutesAgo * 60_000),
  });
  await handle.db
    .insertInto('jobs')
    .values([
      row(1, 'succeeded', 5, null), row(2, 'succeeded', 6, null), row(3, 'succeeded', 7, null),
      row(4, 'failed', 10, 'attempt 3 of 3: upstream 502'), row(5, 'failed', 20, 'attempt 3 of 3: timed out after 300000 ms'),
      row(6, 'cancelled', 15, 'cancelled: cancel requested'), row(7, 'queued', 1, null),
      row(8, 'failed', 120, 'old'), row(9, 'failed', 121, 'old'), row(10, 'failed', 122, 'old'), row(11, 'failed', 123, 'old'),
    ])
    .execute();
  await handle.close();
}

/** Parses psql's aligned table (from psql or `evalops sql`) into objects. */
export function parseAligned(output: string): Array<Record<string, string>> {
  const lines = output.split('\n');
  const rule = lines.findIndex((l) => /^-+(\+-+)*$/.test(l));
  const header = lines[rule - 1]!.split('|').map((s) => s.trim());
  const rows: Array<Record<string, string>> = [];
  for (const line of lines.slice(rule + 1)) {
    if (/^\(\d+ rows?\)$/.test(line.trim()) || !line.trim()) break;
    const cells = line.split('|').map((s) => s.trim());
    rows.push(Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])));
  }
  return rows;
}

export function checkRunbookAnswers(statusOut: string, sampleOut: string): void {
  const counts = Object.fromEntries(parseAligned(statusOut).map((r) => [r.status, Number(r.count)]));
  expect(counts).toEqual({ succeeded: 3, failed: 2, cancelled: 1, queued: 1 });
  const sample = parseAligned(sampleOut);
  expect(sample.map((r) => r.job_id!.slice(-2))).toEqual(['04', '06', '05']);
  expect(sample.map((r) => r.status)).toEqual(['failed', 'cancelled', 'failed']);
  expect(sample[0]!.error_message).toBe('attempt 3 of 3: upstream 502');
  expect(Object.keys(sample[0]!)).toEqual(['job_id', 'type', 'status', 'error_message', 'created_at']);
}

