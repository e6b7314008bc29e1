/** Exit codes of the CLI; scripts and the runbook rely on them. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  /** `migrate current`: the database is behind this version's migrations. */
  MIGRATIONS_PENDING: 3,
  /** The database (or the server holding the embedded one) cannot be reached. */
  CANNOT_CONNECT: 4,
  /** `migrate current`: the database has migrations this version does not know. */
  DATABASE_AHEAD: 5,
  /** `eval run`/`rerun`: the run succeeded but a pass threshold was not met. */
  THRESHOLDS_FAILED: 10,
  /** `eval run`/`rerun`/`verify`: the run ended failed or cancelled. */
  RUN_FAILED: 11,
  /** `eval verify`: the replay did not reproduce results.jsonl byte for byte. */
  NOT_REPRODUCIBLE: 12,
  /** `eval validate`: a result file is missing or run_metadata.json is invalid. */
  INVALID_RUN_FOLDER: 13,
  /** `doctor`: at least one runbook check found something that needs action. */
  ACTION_NEEDED: 14,
  /** The environment is invalid (sysexits EX_CONFIG). */
  CONFIG: 78,
} as const;

/** An error that ends the command with a sentence and a specific exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
