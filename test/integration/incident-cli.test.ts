import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestCounter } from '../../src/obs/request-counter.ts';
import { writeRequestCounts } from '../../src/obs/request-counter-flush.ts';
import { addBusinessDaysKst, formatKst } from '../../src/ops/kst-time.ts';
import { runCli } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * `evalops incident start|update|end|show|list` against a running deployment: the messages carry the
 * figures measured from the database, every message is stored in the incident's timeline, and `end`
 * writes the postmortem skeleton with the runbook's due date. On PGlite the CLI goes through the
 * server that holds the database; on PostgreSQL it reads and writes the database directly.
 */

let db: TestDatabase;
let server: TestServer;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'evalops-incident-'));

beforeAll(async () => {
  db = await createTestDatabase();
  // Flushed only at shutdown: the figures are exactly what the test wrote.
  server = await startTestServer(db, { SLI_FLUSH_MS: '60000', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' });
  // Another API instance answered 100 requests: 90 fast, 10 slow 503s on the evaluations routes.
  const other = new RequestCounter({ instanceId: 'api-2:1:aaaaaa' });
  for (let i = 0; i < 90; i++) other.record('/v1/jobs', 200, 3);
  for (let i = 0; i < 10; i++) other.record('/v1/evaluations/:id', 503, 400);
  await writeRequestCounts(server.database.db, other.instanceId, other.drain());
  // 6 jobs succeeded and 2 failed a few minutes ago.
  const finished = new Date(Date.now() - 3 * 60_000);
  await server.database.db
    .insertInto('jobs')
    .values(
      Array.from({ length: 8 }, (_, i) => ({
        job_id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
        type: i < 6 ? 'noop' : 'sleep',
        status: i < 6 ? ('succeeded' as const) : ('failed' as const),
        payload: '{}',
        max_attempts: 1,
        error_message: i < 6 ? null : 'attempt 1 of 1: injected',
        created_at: finished,
        finished_at: finished,
      })),
    )
    .execute();
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const incident = (args: string[]) => runCli(['incident', ...args], db.env);
const HOUR = 3_600_000;

describe('an incident from start to postmortem', () => {
  it('start: fills the runbook message from the measured figures, next update at +30 minutes', async () => {
    const res = await incident(['start', '--severity', 'P1', '--summary', 'evaluations answer 503', '--mitigation', 'traffic limited at the load balancer', '--format', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const message = JSON.parse(res.stdout);
    expect(message).toMatchObject({ kind: 'incident_start', id: 'INC-1', severity: 'P1', summary: 'evaluations answer 503', mitigation: ['traffic limited at the load balancer'] });
    // 10 of 100 requests 5xx; p99 inside the (250, 500] ms bucket: 250 + 250 × 9/10; 2 of 8 jobs failed; no evaluation ended.
    expect(message.impact).toEqual({ apiErrorRatio: 0.1, p99LatencyMs: 475, jobFailureRatio: 0.25, evaluationFailureRatio: null });
    // With no --affected, the scope is where the measured failures are.
    expect(message.affected).toEqual(['API /v1/evaluations: 10 of 10 requests answered 5xx', 'jobs of type sleep: 2 of 2 ended failed or cancelled']);
    expect(message.at.kst).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} KST$/);
    expect(Date.parse(message.nextUpdate.iso) - Date.parse(message.at.iso)).toBe(30 * 60_000);
    expect(res.stderr).toContain('incident INC-1 opened');
  });

  it('update: a message in Slack mrkdwn with the mitigation so far', async () => {
    const res = await incident(['update', '--progress', 'the database failed over', '--phase', 'identified', '--mitigation', 'restarted the workers', '--format', 'slack']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('*[P1] Incident INC-1 update (identified): evaluations answer 503*');
    expect(res.stdout).toContain('• *Progress:* the database failed over');
    expect(res.stdout).toContain('    ◦ API error ratio: 10.00%');
    expect(res.stdout).toContain('    ◦ evaluation failure ratio: not measured');
    expect(res.stdout).toContain('    ◦ traffic limited at the load balancer\n    ◦ restarted the workers');
  });

  it('end: the end message, and a postmortem skeleton due 24 hours later for a P1', async () => {
    const file = path.join(scratch, 'INC-1.md');
    const res = await incident([
      'end',
      '--root-cause',
      'the primary database ran out of disk',
      '--resolution',
      'freed disk space and failed over',
      '--prevention',
      'alert on disk usage above 80% | platform team | 2030-01-31',
      '--postmortem',
      file,
      '--format',
      'json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const message = JSON.parse(res.stdout);
    expect(message).toMatchObject({ kind: 'incident_end', id: 'INC-1', rootCause: 'the primary database ran out of disk', prevention: [{ item: 'alert on disk usage above 80%', owner: 'platform team', due: '2030-01-31' }] });
    expect(Date.parse(message.postmortemDue.iso) - Date.parse(message.at.iso)).toBe(24 * HOUR);
    expect(res.stderr).toContain(`postmortem skeleton written to ${file}; due ${message.postmortemDue.kst}`);

    const pm = readFileSync(file, 'utf8');
    expect(pm).toContain('# Postmortem: evaluations answer 503');
    expect(pm).toContain(`| Due | ${message.postmortemDue.kst}, 24 hours after the end (P1) |`);
    expect(pm).toContain('| Incident | INC-1 |');
    expect(pm).toContain('- API error ratio: 10.00%');
    expect(pm).toContain('- job failure ratio: 25.00%');
    expect(pm).toContain('- the primary database ran out of disk');
    expect(pm).toContain('| alert on disk usage above 80% | prevent | platform team | 2030-01-31 | none yet |');
    expect(pm).toMatch(/- \d{4}-\d{2}-\d{2} \d{2}:\d{2} KST: started \(P1\): evaluations answer 503\n- .* KST: identified: the database failed over\n- .* KST: resolved: the primary database ran out of disk/);
  });

  it('keeps the incident and every message in its timeline', async () => {
    const res = await incident(['show', 'INC-1', '--format', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const shown = JSON.parse(res.stdout);
    expect(shown.incident).toMatchObject({ id: 'INC-1', severity: 'P1', status: 'resolved', root_cause: 'the primary database ran out of disk', mitigation: ['traffic limited at the load balancer', 'restarted the workers'] });
    expect(shown.incident.postmortem_due_at.kst).toMatch(/KST$/);
    expect(shown.timeline.map((e: { kind: string }) => e.kind)).toEqual(['start', 'update', 'end']);
    expect(shown.timeline[0].message).toMatchObject({ kind: 'incident_start', impact: { apiErrorRatio: 0.1 } });
    expect(shown.timeline.every((e: { actor: string }) => e.actor.startsWith('cli:'))).toBe(true);
    const text = await incident(['show']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('INC-1 P1 resolved (resolved): evaluations answer 503');
    expect(text.stdout).toContain('## [P1] Incident INC-1 resolved: evaluations answer 503');
  });
});

describe('P2 and the rules around open incidents', () => {
  it('gives a P2 three business days in KST', async () => {
    expect((await incident(['start', '--severity', 'P2', '--summary', 'slow evaluation runs', '--affected', 'POST /v1/evaluations'])).code).toBe(0);
    const end = await incident(['end', '--id', 'INC-2', '--root-cause', 'a slow provider', '--resolution', 'lowered concurrency', '--postmortem', path.join(scratch, 'INC-2.md'), '--format', 'json']);
    expect(end.code, end.stderr).toBe(0);
    const message = JSON.parse(end.stdout);
    expect(message.postmortemDue.kst).toBe(formatKst(addBusinessDaysKst(new Date(message.at.iso), 3)));
    expect(readFileSync(path.join(scratch, 'INC-2.md'), 'utf8')).toContain('3 business days after the end, weekends in KST skipped (P2)');
  });

  it('refuses an update with nothing open, or with several open and no --id', async () => {
    const none = await incident(['update', '--progress', 'x']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no incident is open; start one with `evalops incident start`');
    expect((await incident(['start', '--severity', 'P2', '--summary', 'one'])).code).toBe(0);
    expect((await incident(['start', '--severity', 'P1', '--summary', 'two'])).code).toBe(0);
    const ambiguous = await incident(['update', '--progress', 'x']);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('2 incidents are open (INC-4, INC-3); name one with --id');
    const resolvedAlready = await incident(['update', '--id', 'INC-1', '--progress', 'x']);
    expect(resolvedAlready.stderr).toContain('incident INC-1 is already resolved');
    const badSeverity = await incident(['start', '--severity', 'P3', '--summary', 'x']);
    expect(badSeverity.code).toBe(1);
    expect(badSeverity.stderr).toContain('severity: accepts P1 or P2');
    const list = await incident(['list', '--json']);
    expect(JSON.parse(list.stdout).map((i: { id: string; status: string }) => `${i.id} ${i.status}`)).toEqual(['INC-4 open', 'INC-3 open', 'INC-2 resolved', 'INC-1 resolved']);
  });
});
