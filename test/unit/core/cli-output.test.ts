import { describe, expect, it } from 'vitest';
import { renderCsv, renderTable } from '../../../src/cli/table-output.ts';
import { parseDuration } from '../../../src/config/duration.ts';

describe('psql-style table output', () => {
  it('aligns like psql: centred headers, numbers right, text left, row count', () => {
    const out = renderTable(['status', 'count'], [['succeeded', 3], ['failed', 12]]);
    expect(out).toBe(['  status   | count', '-----------+-------', ' succeeded |     3', ' failed    |    12', '(2 rows)'].join('\n'));
  });

  it('shows NULL as empty, dates in ISO, JSON compact; and no columns as just the count', () => {
    const out = renderTable(['a', 'b', 'c'], [[null, new Date('2026-01-02T03:04:05Z'), { x: 1 }]]);
    expect(out).toContain(' | 2026-01-02T03:04:05.000Z | {"x":1}');
    expect(out.endsWith('(1 row)')).toBe(true);
    expect(renderTable([], [])).toBe('(0 rows)');
  });

  it('quotes CSV fields that need it', () => {
    expect(renderCsv(['x'], [['a"b'], ['c,d'], [null]])).toBe('x\n"a""b"\n"c,d"\n');
  });
});

describe('parseDuration', () => {
  it('parses units and rejects junk', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250')).toBe(250);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('yesterday')).toBeUndefined();
    expect(parseDuration('-1h')).toBeUndefined();
  });
});
