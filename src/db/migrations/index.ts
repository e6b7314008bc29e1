import type { Migration } from 'kysely';
import * as m0001 from './0001-jobs.ts';

/**
 * Append-only: a migration, once released, is never edited; a change is a new numbered file.
 * Listed in code rather than read from disk so the built service carries them with it.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-jobs': m0001,
};
