import { DOCTOR_SECTIONS, type CheckResult, type DoctorReport, type DoctorSection } from './doctor-types.ts';

/**
 * `evalops doctor` for a terminal: the runbook's sections in order, one line per check, and under
 * each finding its evidence and next step. Passing checks show their evidence with `--verbose`.
 */

const MARK: Record<CheckResult['status'], string> = { ok: 'ok    ', action: 'ACTION', skipped: 'skip  ' };

function checkLines(c: CheckResult, verbose: boolean): string[] {
  const out = [`  ${MARK[c.status]} ${c.step.padEnd(8)} ${c.title}: ${c.summary}`];
  if (c.status === 'action' || verbose) {
    for (const e of c.evidence) out.push(`           | ${e}`);
  }
  if (c.next_step) out.push(`           next: ${c.next_step}`);
  if (c.status === 'action') out.push(`           runbook: ${c.runbook}  (${c.id})`);
  return out;
}

/** The report as text. */
export function formatDoctorReport(report: DoctorReport, options: { verbose?: boolean } = {}): string {
  const verbose = options.verbose ?? false;
  const out = [`evalops doctor: ${report.url} at ${report.checked_at} (${(report.duration_ms / 1000).toFixed(1)} s)`];
  const config = Object.entries(report.configuration).map(([k, v]) => `${k}=${v ?? 'unset'}`);
  out.push(`  ${config.join('  ')}`);
  for (const section of Object.keys(DOCTOR_SECTIONS) as DoctorSection[]) {
    const checks = report.checks.filter((c) => c.section === section);
    if (checks.length === 0) continue;
    out.push('', `${DOCTOR_SECTIONS[section].title}`);
    for (const c of checks) out.push(...checkLines(c, verbose));
  }
  out.push('');
  if (report.findings.length === 0) out.push('no finding: every runbook check passed');
  else {
    out.push(`${report.findings.length} finding(s) need action:`);
    for (const f of report.findings) out.push(`  - [${f.section === 'common' ? 'common' : `section ${f.section}`}] ${f.id}: ${f.summary}`);
  }
  return `${out.join('\n')}\n`;
}
