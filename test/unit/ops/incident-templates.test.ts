import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import {
  incidentEndMessage,
  incidentStartMessage,
  incidentUpdateMessage,
  renderIncidentMessage,
  type IncidentStartInput,
} from '../../../src/ops/incident-templates.ts';

/** A clock stopped at one instant: messages never read the real time. */
const at = (iso: string) => () => new Date(iso);

const start: IncidentStartInput = {
  id: 'INC-7',
  severity: 'P1',
  summary: 'API answers 5xx on job submission',
  impact: { apiErrorRatio: 0.0235, p99LatencyMs: 1250.4, jobFailureRatio: null },
  affected: ['POST /v1/jobs', 'job processing'],
  mitigation: ['traffic limited to 50 rps'],
};

describe('incident start', () => {
  it('is stamped in KST with the next update 30 minutes later, and says which figures were not measured', () => {
    const message = incidentStartMessage(start, at('2025-01-10T06:00:00Z'));
    expect(message.at).toEqual({ iso: '2025-01-10T06:00:00.000Z', kst: '2025-01-10 15:00 KST' });
    expect(message.nextUpdate).toEqual({ iso: '2025-01-10T06:30:00.000Z', kst: '2025-01-10 15:30 KST' });
    expect(message.impact).toEqual({ apiErrorRatio: 0.0235, p99LatencyMs: 1250.4, jobFailureRatio: null, evaluationFailureRatio: null });

    expect(renderIncidentMessage(message, 'markdown')).toBe(
      [
        '## [P1] Incident INC-7 started: API answers 5xx on job submission',
        '',
        '- **Time:** 2025-01-10 15:00 KST',
        '- **Severity:** P1',
        '- **Summary:** API answers 5xx on job submission',
        '- **Impact:**',
        '  - API error ratio: 2.35%',
        '  - p99 latency: 1250 ms',
        '  - job failure ratio: not measured',
        '  - evaluation failure ratio: not measured',
        '- **Affected endpoints/functions:**',
        '  - POST /v1/jobs',
        '  - job processing',
        '- **Mitigation so far:**',
        '  - traffic limited to 50 rps',
        '- **Next update:** 2025-01-10 15:30 KST (+30 min)',
        '',
      ].join('\n'),
    );
  });

  it('uses the Seoul date when UTC is still on the previous day', () => {
    // 23:50 UTC on 14 March is 08:50 on 15 March in Seoul; the next update is 09:20.
    const message = incidentStartMessage({ severity: 'P2', summary: 'slow evaluations' }, at('2025-03-14T23:50:00Z'));
    expect(message.at.kst).toBe('2025-03-15 08:50 KST');
    expect(message.nextUpdate.kst).toBe('2025-03-15 09:20 KST');
    const text = renderIncidentMessage(message, 'markdown');
    expect(text).toContain('- **Time:** 2025-03-15 08:50 KST');
    expect(text).toContain('- **Mitigation so far:** none yet');
    expect(text).toContain('- **Affected endpoints/functions:** being assessed');
    expect(text).toContain('  - API error ratio: not measured');
  });

  it('renders Slack mrkdwn with the reserved characters escaped', () => {
    const message = incidentStartMessage({ ...start, summary: 'errors on <jobs> & evals' }, at('2025-01-10T06:00:00Z'));
    const slack = renderIncidentMessage(message, 'slack');
    expect(slack.split('\n')[0]).toBe('*[P1] Incident INC-7 started: errors on &lt;jobs&gt; &amp; evals*');
    expect(slack).toContain('• *Time:* 2025-01-10 15:00 KST');
    expect(slack).toContain('    ◦ API error ratio: 2.35%');
    expect(slack).toContain('• *Next update:* 2025-01-10 15:30 KST (+30 min)');
    expect(slack).not.toContain('**');
  });

  it('renders JSON that parses back to the message', () => {
    const message = incidentStartMessage(start, at('2025-01-10T06:00:00Z'));
    const parsed = JSON.parse(renderIncidentMessage(message, 'json'));
    expect(parsed).toEqual(message);
    expect(parsed.impact.evaluationFailureRatio).toBeNull();
  });

  it('refuses invalid input with a VALIDATION error naming the field', () => {
    const bad = () => incidentStartMessage({ severity: 'P3' as 'P1', summary: 'x', impact: { apiErrorRatio: 2.5 } }, at('2025-01-10T06:00:00Z'));
    expect(bad).toThrow(AppError);
    expect(bad).toThrow(/severity: accepts P1 or P2/);
    expect(bad).toThrow(/impact\.apiErrorRatio: must be a ratio from 0 to 1/);
    expect(() => incidentStartMessage({ severity: 'P1', summary: 'two\nlines' }, at('2025-01-10T06:00:00Z'))).toThrow(/summary: must be one line/);
  });
});

describe('incident update', () => {
  it('carries the phase, the progress and a new next-update time', () => {
    const message = incidentUpdateMessage(
      { ...start, phase: 'identified', progress: 'database pool exhausted; raising the pool size', impact: { apiErrorRatio: 0.004 } },
      at('2025-01-10T06:30:00Z'),
    );
    expect(message.nextUpdate.kst).toBe('2025-01-10 16:00 KST');
    const text = renderIncidentMessage(message, 'markdown');
    expect(text.split('\n')[0]).toBe('## [P1] Incident INC-7 update (identified): API answers 5xx on job submission');
    expect(text).toContain('- **Status:** identified');
    expect(text).toContain('- **Progress:** database pool exhausted; raising the pool size');
    expect(text).toContain('  - API error ratio: 0.40%');
    expect(text).toContain('  - p99 latency: not measured');
  });
});

describe('incident end', () => {
  it('P2 ending on a Friday in KST: the analysis is due the next Wednesday', () => {
    // Friday 10 January 2025, 15:00 KST. Saturday and Sunday do not count: Monday, Tuesday, Wednesday.
    const message = incidentEndMessage(
      {
        id: 'INC-8',
        severity: 'P2',
        summary: 'job failures after deploy',
        startedAt: new Date('2025-01-10T04:45:00Z'),
        rootCause: 'a migration dropped the default on jobs.priority',
        resolution: 'rolled back to v1.4.2 and re-ran the failed jobs',
        prevention: [{ item: 'check defaults in migration review', owner: 'jiyoon', due: '2025-01-17' }],
      },
      at('2025-01-10T06:00:00Z'),
    );
    expect(message.at.kst).toBe('2025-01-10 15:00 KST');
    expect(message.durationMinutes).toBe(75);
    expect(message.postmortemDue).toEqual({ iso: '2025-01-15T06:00:00.000Z', kst: '2025-01-15 15:00 KST' });
    expect(renderIncidentMessage(message, 'markdown')).toBe(
      [
        '## [P2] Incident INC-8 resolved: job failures after deploy',
        '',
        '- **End time:** 2025-01-10 15:00 KST',
        '- **Started:** 2025-01-10 13:45 KST (75 min)',
        '- **Root cause:** a migration dropped the default on jobs.priority',
        '- **Recovery/mitigation:** rolled back to v1.4.2 and re-ran the failed jobs',
        '- **Prevention items:**',
        '  - check defaults in migration review (owner: jiyoon, due: 2025-01-17)',
        '- **Postmortem due (P2):** 2025-01-15 15:00 KST',
        '',
      ].join('\n'),
    );
  });

  it('P1: the postmortem is due 24 hours after the end, weekend or not', () => {
    // Friday 23:30 KST -> Saturday 23:30 KST.
    const message = incidentEndMessage({ severity: 'P1', summary: 'outage', rootCause: 'disk full', resolution: 'freed space' }, at('2025-01-10T14:30:00Z'));
    expect(message.at.kst).toBe('2025-01-10 23:30 KST');
    expect(message.postmortemDue.kst).toBe('2025-01-11 23:30 KST');
    expect(message.startedAt).toBeNull();
    expect(renderIncidentMessage(message, 'markdown')).toContain('- **Prevention items:** none recorded');
  });

  it('the end time in KST can already be the next day', () => {
    // 15:10 UTC on Thursday 9 January is 00:10 on Friday 10 January in Seoul: a P2 due on Wednesday 15th.
    const message = incidentEndMessage({ severity: 'P2', summary: 'x', rootCause: 'y', resolution: 'z' }, at('2025-01-09T15:10:00Z'));
    expect(message.at.kst).toBe('2025-01-10 00:10 KST');
    expect(message.postmortemDue.kst).toBe('2025-01-15 00:10 KST');
  });

  it('asks for a one-line root cause and owners and dates on prevention items', () => {
    const clock = at('2025-01-10T06:00:00Z');
    expect(() => incidentEndMessage({ severity: 'P1', summary: 's', rootCause: 'a\nb', resolution: 'r' }, clock)).toThrow(/rootCause: must be one line/);
    expect(() =>
      incidentEndMessage({ severity: 'P1', summary: 's', rootCause: 'c', resolution: 'r', prevention: [{ item: 'i', owner: '', due: '2025-02-30' }] }, clock),
    ).toThrow(/prevention\.0\.owner: must say who owns it; prevention\.0\.due: must be a real calendar date/);
    expect(() => incidentEndMessage({ severity: 'P1', summary: 's', rootCause: 'c', resolution: 'r', startedAt: new Date('2025-01-10T07:00:00Z') }, clock)).toThrow(
      /startedAt: must not be after the end time/,
    );
  });
});
