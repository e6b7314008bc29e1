import { describe, expect, it } from 'vitest';
import { incidentEndMessage } from '../../../src/ops/incident-templates.ts';
import { buildPostmortem, postmortemDueAt, postmortemFromIncidentEnd, renderPostmortem } from '../../../src/ops/postmortem-template.ts';
import { formatKst } from '../../../src/ops/kst-time.ts';

const fridayAfternoonKst = new Date('2025-01-10T06:00:00Z'); // Friday 15:00 KST

describe('postmortemDueAt', () => {
  it('P1: 24 hours after the end', () => {
    expect(postmortemDueAt('P1', fridayAfternoonKst).toISOString()).toBe('2025-01-11T06:00:00.000Z');
  });

  it('P2 ending on a Friday in KST: the next Wednesday, same time', () => {
    expect(formatKst(postmortemDueAt('P2', fridayAfternoonKst))).toBe('2025-01-15 15:00 KST');
  });

  it('P2 with a public holiday on the Monday: Thursday', () => {
    expect(formatKst(postmortemDueAt('P2', fridayAfternoonKst, new Set(['2025-01-13'])))).toBe('2025-01-16 15:00 KST');
  });
});

describe('buildPostmortem', () => {
  const pm = buildPostmortem({
    id: 'INC-8',
    title: 'Job failures after deploy',
    severity: 'P2',
    startedAt: new Date('2025-01-10T04:45:00Z'),
    endedAt: fridayAfternoonKst,
    authors: ['jiyoon', 'min'],
    responders: ['jiyoon (incident commander)', 'min (scribe)'],
    summary: 'Jobs failed for 75 minutes after v1.5.0.',
    impact: { jobFailureRatio: 0.31 },
    rootCauses: ['a migration dropped the default on jobs.priority'],
    resolution: 'rolled back to v1.4.2',
    actionItems: [{ item: 'check | defaults in review', owner: 'jiyoon', due: '2025-01-17', type: 'process', ticket: 'OPS-12' }],
    // Out of order on purpose: the skeleton sorts them.
    timeline: [
      { at: new Date('2025-01-10T05:00:00Z'), event: 'JobSuccessPageBurn fired' },
      { at: new Date('2025-01-10T04:45:00Z'), event: 'v1.5.0 deployed' },
    ],
  });

  it('holds the SRE book fields, a draft status and the due date', () => {
    expect(pm).toMatchObject({
      kind: 'postmortem',
      title: 'Job failures after deploy',
      date: '2025-01-10',
      status: 'draft',
      trigger: null,
      detection: null,
      lessonsLearned: { wentWell: [], wentWrong: [], gotLucky: [] },
      due: { kst: '2025-01-15 15:00 KST' },
    });
    expect(pm.impact.durationMinutes).toBe(75);
    expect(pm.impact.figures).toEqual({ apiErrorRatio: null, p99LatencyMs: null, jobFailureRatio: 0.31, evaluationFailureRatio: null });
    expect(pm.timeline.map((t) => t.at.kst)).toEqual(['2025-01-10 13:45 KST', '2025-01-10 14:00 KST']);
  });

  it('renders Markdown with every section, an action item table, and placeholders for what is left to write', () => {
    const md = renderPostmortem(pm, 'markdown');
    const headings = md.split('\n').filter((l) => l.startsWith('#'));
    expect(headings).toEqual([
      '# Postmortem: Job failures after deploy',
      '## Summary',
      '## Impact',
      '## Root causes',
      '## Trigger',
      '## Resolution',
      '## Detection',
      '## Responders',
      '## Action items',
      '## Lessons learned',
      '### What went well',
      '### What went wrong',
      '### Where we got lucky',
      '## Timeline (KST)',
    ]);
    expect(md).toContain('| Date | 2025-01-10 (KST) |');
    expect(md).toContain('| Authors | jiyoon, min |');
    expect(md).toContain('| Status | Draft |');
    expect(md).toContain('| Due | 2025-01-15 15:00 KST, 3 business days after the end, weekends in KST skipped (P2) |');
    expect(md).toContain('- Duration: 2025-01-10 13:45 KST to 2025-01-10 15:00 KST (75 min)');
    expect(md).toContain('- job failure ratio: 31.00%');
    expect(md).toContain('- API error ratio: not measured');
    expect(md).toContain('| Item | Type | Owner | Due | Ticket |');
    expect(md).toContain('| check \\| defaults in review | process | jiyoon | 2025-01-17 | OPS-12 |');
    expect(md).toContain('## Trigger\n\n_to be written_');
    expect(md).toContain('## Responders\n\n- jiyoon (incident commander)\n- min (scribe)');
    expect(md).toContain('- 2025-01-10 13:45 KST: v1.5.0 deployed\n- 2025-01-10 14:00 KST: JobSuccessPageBurn fired');
  });

  it('renders Slack mrkdwn and JSON', () => {
    const slack = renderPostmortem(pm, 'slack');
    expect(slack.split('\n')[0]).toBe('*Postmortem (draft): Job failures after deploy*');
    expect(slack).toContain('• check | defaults in review (process; owner: jiyoon; due: 2025-01-17; ticket: OPS-12)');
    expect(slack).toContain('_Where we got lucky_');
    expect(JSON.parse(renderPostmortem(pm, 'json'))).toEqual(JSON.parse(JSON.stringify(pm)));
  });
});

describe('postmortemFromIncidentEnd', () => {
  it('prefills root cause, resolution and prevention items from the end message', () => {
    const end = incidentEndMessage(
      {
        id: 'INC-9',
        severity: 'P1',
        summary: 'API down',
        startedAt: new Date('2025-03-14T15:40:00Z'),
        rootCause: 'expired database password',
        resolution: 'rotated the password',
        prevention: [{ item: 'alert 14 days before expiry', owner: 'min', due: '2025-03-21' }],
      },
      () => new Date('2025-03-14T16:10:00Z'),
    );
    const pm = postmortemFromIncidentEnd(end, { authors: ['min'], timeline: [{ at: new Date('2025-03-14T15:42:00Z'), event: 'paged' }] });
    // Started 00:40 KST on Saturday 15 March although UTC still says the 14th.
    expect(pm.date).toBe('2025-03-15');
    expect(pm.rootCauses).toEqual(['expired database password']);
    expect(pm.resolution).toBe('rotated the password');
    expect(pm.actionItems).toEqual([{ item: 'alert 14 days before expiry', type: 'prevent', owner: 'min', due: '2025-03-21', ticket: null }]);
    // P1: 24 hours after 01:10 KST on the 15th.
    expect(pm.due.kst).toBe('2025-03-16 01:10 KST');
    expect(pm.id).toBe('INC-9');
  });
});
