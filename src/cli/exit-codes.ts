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
