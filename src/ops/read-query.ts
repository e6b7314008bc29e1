import type { QueryResultTable } from '../db/database.ts';

/**
 * One read-only statement against the service's database, wherever it is: `database.readOnlyQuery`
 * in the API process, or the CLI's DatabaseAccess (directly, or through the server that holds the
 * embedded database). The SLO, doctor and incident figures are read only through this, so reading
 * them can never change data.
 */
export type ReadQuery = (text: string) => Promise<QueryResultTable>;

/** The rows of a result as objects keyed by column name. */
export function rowsOf(result: QueryResultTable): Array<Record<string, unknown>> {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c, row[i]])));
}

/** A number from a driver value (number, numeric string, bigint, null). */
export function num(value: unknown): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(value);
}

/** A number, or null when the database said NULL. */
export function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

/** ISO 8601 from a timestamp as either driver (or JSON through the server) gives it. */
export function isoOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

/** Seconds as SQL interval arithmetic; inlined, so it must be a whole number computed by us. */
export function secondsAgo(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0) throw new RangeError(`not a whole number of seconds: ${seconds}`);
  return `now() - ${seconds} * INTERVAL '1 second'`;
}
