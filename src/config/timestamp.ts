import { z } from 'zod';

/**
 * RFC 3339 date-times with a time zone (`2026-12-08T09:30:00Z`, `...+09:00`, fractions allowed), the
 * calendar checked (no February 30th). `Date` parsing alone took `"1"` for the year 2001 and a time
 * without a zone for the server's local time: an input time is this form or refused.
 */
export const rfc3339Schema = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 date-time with a time zone, such as 2026-12-08T09:30:00Z or 2026-12-08T18:30:00+09:00' });

/** The instant of an RFC 3339 date-time, or undefined when `text` is not one. */
export function parseRfc3339(text: string): Date | undefined {
  if (!rfc3339Schema.safeParse(text).success) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
