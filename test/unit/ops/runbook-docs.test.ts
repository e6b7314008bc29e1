import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUNBOOK_SECTIONS } from '../../../src/obs/slo-config.ts';
import { DOCTOR_CHECK_IDS, DOCTOR_SECTIONS } from '../../../src/ops/doctor-types.ts';

const read = (p: string) => readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return out;
}

describe('docs/runbook.md and docs/slo.md, kept in step with the code', () => {
  const runbook = read('docs/runbook.md');
  const slo = read('docs/slo.md');

  it('keeps the section anchors the SLOs, the alerts and the doctor link to', () => {
    const have = anchors(runbook);
    for (const anchor of [...Object.values(RUNBOOK_SECTIONS), ...Object.values(DOCTOR_SECTIONS).map((s) => s.anchor)]) expect(have, anchor).toContain(anchor);
  });

  it('names every doctor check', () => {
    for (const id of DOCTOR_CHECK_IDS) expect(runbook, id).toContain(`\`${id}\``);
  });

  it('links between the two documents resolve', () => {
    const runbookAnchors = anchors(runbook);
    const sloAnchors = anchors(slo);
    for (const m of slo.matchAll(/\(runbook\.md#([^)]+)\)/g)) expect(runbookAnchors, `slo.md -> runbook.md#${m[1]}`).toContain(m[1]);
    for (const m of runbook.matchAll(/\(slo\.md#([^)]+)\)/g)) expect(sloAnchors, `runbook.md -> slo.md#${m[1]}`).toContain(m[1]);
  });

  it('links inside the runbook resolve', () => {
    const have = anchors(runbook);
    for (const m of runbook.matchAll(/\]\(#([^)]+)\)/g)) expect(have, `#${m[1]}`).toContain(m[1]);
  });

  it('gives the seed\'s section-B queries verbatim', () => {
    expect(runbook).toContain("SELECT status, COUNT(*)\n   FROM jobs\n   WHERE created_at >= NOW() - INTERVAL '1 hour'\n   GROUP BY status;");
    expect(runbook).toContain("AND status IN ('failed', 'cancelled')\n   ORDER BY created_at DESC\n   LIMIT 30;");
  });
});
