import type { Migration } from 'kysely';
import * as m0001 from './0001-jobs.ts';
import * as m0002 from './0002-evaluations.ts';
import * as m0003 from './0003-slo-and-incidents.ts';
import * as m0004 from './0004-access-control.ts';
import * as m0005 from './0005-jobs-notify-opt-out.ts';
import * as m0006 from './0006-sql-reader-role.ts';
import * as m0007 from './0007-job-ownership.ts';

/**
 * Append-only: a migration, once released, is never edited; a change is a new numbered file.
 * Listed in code rather than read from disk so the built service carries them with it.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-jobs': m0001,
  '0002-evaluations': m0002,
  '0003-slo-and-incidents': m0003,
  '0004-access-control': m0004,
  '0005-jobs-notify-opt-out': m0005,
  '0006-sql-reader-role': m0006,
  '0007-job-ownership': m0007,
};
