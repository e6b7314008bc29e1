import { describe, expect, it } from 'vitest';
import { addBusinessDaysKst, addMinutes, formatKst, kstDate, kstWeekday } from '../../../src/ops/kst-time.ts';

describe('formatKst', () => {
  it('shows Seoul wall-clock time, nine hours ahead of UTC', () => {
    expect(formatKst(new Date('2025-01-10T06:00:00Z'))).toBe('2025-01-10 15:00 KST');
  });

  it('moves to the next day when UTC is still on the previous one', () => {
    // 16:30 UTC on Friday 14 March is 01:30 on Saturday 15 March in Seoul.
    const at = new Date('2025-03-14T16:30:00Z');
    expect(formatKst(at)).toBe('2025-03-15 01:30 KST');
    expect(kstDate(at)).toBe('2025-03-15');
    expect(kstWeekday(at)).toBe(6);
  });

  it('crosses the year in Seoul first', () => {
    expect(formatKst(new Date('2025-12-31T15:00:00Z'))).toBe('2026-01-01 00:00 KST');
  });

  it('agrees with the Asia/Seoul time zone of the ICU data', () => {
    const seoul = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Seoul', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    for (const iso of ['2024-02-29T14:59:00Z', '2024-02-29T15:00:00Z', '2025-07-01T00:00:00Z', '2025-11-02T09:30:00Z', '2030-03-31T23:59:00Z']) {
      const at = new Date(iso);
      const parts = Object.fromEntries(seoul.formatToParts(at).map((p) => [p.type, p.value]));
      expect(formatKst(at)).toBe(`${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} KST`);
    }
  });

  it('refuses an invalid date', () => {
    expect(() => formatKst(new Date('not a date'))).toThrow(RangeError);
  });
});

describe('addBusinessDaysKst', () => {
  it('Friday 15:00 KST plus 3 business days is Wednesday 15:00 KST', () => {
    const due = addBusinessDaysKst(new Date('2025-01-10T06:00:00Z'), 3);
    expect(formatKst(due)).toBe('2025-01-15 15:00 KST');
    expect(kstWeekday(due)).toBe(3);
  });

  it('counts the Seoul weekday, not the UTC one', () => {
    // Thursday 16:00 UTC is Friday 01:00 in Seoul: the weekend follows, so Wednesday, not Tuesday.
    expect(formatKst(addBusinessDaysKst(new Date('2025-01-09T16:00:00Z'), 3))).toBe('2025-01-15 01:00 KST');
  });

  it('never counts weekend days, even when the start is on one', () => {
    // Saturday 10:00 KST: Sunday skipped; Monday, Tuesday, Wednesday.
    expect(formatKst(addBusinessDaysKst(new Date('2025-01-11T01:00:00Z'), 3))).toBe('2025-01-15 10:00 KST');
  });

  it('skips the holidays it is given', () => {
    // Friday 10 January with Monday 13 January off: Tuesday, Wednesday, Thursday.
    expect(formatKst(addBusinessDaysKst(new Date('2025-01-10T06:00:00Z'), 3, new Set(['2025-01-13'])))).toBe('2025-01-16 15:00 KST');
  });

  it('zero days is the same time; negative or fractional days are refused', () => {
    const at = new Date('2025-01-10T06:00:00Z');
    expect(addBusinessDaysKst(at, 0).getTime()).toBe(at.getTime());
    expect(() => addBusinessDaysKst(at, -1)).toThrow(RangeError);
    expect(() => addBusinessDaysKst(at, 1.5)).toThrow(RangeError);
  });
});

describe('addMinutes', () => {
  it('adds minutes', () => {
    expect(addMinutes(new Date('2025-12-31T14:45:00Z'), 30).toISOString()).toBe('2025-12-31T15:15:00.000Z');
  });
});
