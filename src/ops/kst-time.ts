/**
 * Times as the runbook writes them (`YYYY-MM-DD HH:MM KST`) and business-day arithmetic in Korea.
 * Korea Standard Time is UTC+9 with no daylight saving since 1988, so a fixed offset is exact and
 * does not depend on the ICU data Node was built with (a test checks it against `Asia/Seoul`).
 */

/** Where the current time comes from; tests pass a fixed one. */
export type Clock = () => Date;

/** The real clock. */
export const systemClock: Clock = () => new Date();

const KST_OFFSET_MS = 9 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

function checkDate(date: Date): void {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
}

/** The date shifted so that its UTC fields read as the wall clock in Seoul. */
function kstFields(date: Date): Date {
  checkDate(date);
  return new Date(date.getTime() + KST_OFFSET_MS);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2025-01-10` for the day it is in Seoul at `date`. */
export function kstDate(date: Date): string {
  const k = kstFields(date);
  return `${k.getUTCFullYear()}-${pad(k.getUTCMonth() + 1)}-${pad(k.getUTCDate())}`;
}

/** `2025-01-10 18:30 KST`, the runbook's time format. */
export function formatKst(date: Date): string {
  const k = kstFields(date);
  return `${kstDate(date)} ${pad(k.getUTCHours())}:${pad(k.getUTCMinutes())} KST`;
}

/** Day of the week in Seoul: 0 Sunday … 6 Saturday. */
export function kstWeekday(date: Date): number {
  return kstFields(date).getUTCDay();
}

/** `date` plus `minutes`. */
export function addMinutes(date: Date, minutes: number): Date {
  checkDate(date);
  return new Date(date.getTime() + minutes * 60_000);
}

/**
 * `date` moved forward by `days` business days in Seoul, keeping the time of day: each step goes to
 * the next day and counts it only when it is Monday to Friday and not in `holidays` (`YYYY-MM-DD`,
 * Seoul dates). A Friday 15:00 plus 3 is the next Wednesday 15:00; a Saturday 10:00 plus 3 is
 * Wednesday 10:00 too, since the weekend days themselves never count.
 */
export function addBusinessDaysKst(date: Date, days: number, holidays: ReadonlySet<string> = new Set()): Date {
  checkDate(date);
  if (!Number.isInteger(days) || days < 0) throw new RangeError(`business days must be a whole number ≥ 0 (got ${days})`);
  let t = date.getTime();
  let counted = 0;
  while (counted < days) {
    // A fixed 24 hours is one calendar day in Seoul: no daylight saving there.
    t += DAY_MS;
    const d = new Date(t);
    const weekday = kstWeekday(d);
    if (weekday !== 0 && weekday !== 6 && !holidays.has(kstDate(d))) counted += 1;
  }
  return new Date(t);
}
