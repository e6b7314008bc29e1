/**
 * What `evalops doctor` reports: one result per runbook check, each naming its runbook section and
 * step, what it found (evidence) and the next step. A result whose status is `action` is a finding:
 * something an on-call engineer must act on. A healthy deployment has none.
 */

export type DoctorSection = 'common' | 'A' | 'B' | 'C';

/** The runbook's sections, with their anchors in docs/runbook.md. */
export const DOCTOR_SECTIONS: Readonly<Record<DoctorSection, { title: string; anchor: string }>> = Object.freeze({
  common: { title: 'Common first checks', anchor: 'common-first-checks' },
  A: { title: 'A. API availability drop', anchor: 'a-api-availability-drop' },
  B: { title: 'B. Job success rate drop', anchor: 'b-job-success-rate-drop' },
  C: { title: 'C. Evaluation run failures', anchor: 'c-evaluation-run-failures' },
});

/** Every check, in the order the doctor runs them; docs/runbook.md names each (a test keeps them in step). */
export const DOCTOR_CHECK_IDS = [
  'common.endpoints',
  'common.configuration',
  'common.logs',
  'A.error_ratio',
  'A.database',
  'A.redis',
  'A.background_tasks',
  'A.migrations',
  'A.slo_burn',
  'B.status_distribution',
  'B.failed_jobs',
  'B.workers',
  'B.backlog',
  'B.slo_burn',
  'C.failed_runs',
  'C.result_files',
  'C.mlflow',
  'C.replay',
  'C.slo_burn',
] as const;

/**
 * `ok`: checked, nothing to do. `action`: a finding. `skipped`: could not or need not run here (the
 * evidence says why: no MLflow configured, no database to read, `--replay` not given).
 */
export type CheckStatus = 'ok' | 'action' | 'skipped';

export interface CheckResult {
  /** Stable id, e.g. `B.failed_jobs`; docs/runbook.md names each. */
  readonly id: string;
  readonly section: DoctorSection;
  /** The runbook step it performs, e.g. `B.2`. */
  readonly step: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** One line: what was found. */
  readonly summary: string;
  /** The figures, rows and messages behind the summary. */
  readonly evidence: readonly string[];
  /** What to do next; null when nothing is to be done. */
  readonly next_step: string | null;
  /** docs/runbook.md#<section anchor>. */
  readonly runbook: string;
  /** The same evidence as data, for --json. */
  readonly data?: unknown;
}

export interface DoctorReport {
  readonly url: string;
  readonly checked_at: string;
  readonly duration_ms: number;
  /** What the doctor ran against, secrets masked. */
  readonly configuration: Readonly<Record<string, string | null>>;
  readonly checks: readonly CheckResult[];
  /** The checks whose status is `action`. */
  readonly findings: readonly CheckResult[];
  /** True when anything needs action (the exit code says the same). */
  readonly action_needed: boolean;
}

/** Builds a result with its runbook link. */
export function check(
  section: DoctorSection,
  fields: Omit<CheckResult, 'section' | 'runbook' | 'evidence' | 'next_step'> & { evidence?: readonly string[]; next_step?: string | null },
  runbookFile = 'docs/runbook.md',
): CheckResult {
  return {
    section,
    runbook: `${runbookFile}#${DOCTOR_SECTIONS[section].anchor}`,
    evidence: [],
    next_step: null,
    ...fields,
  };
}
