/** A cell as psql would show it: NULL empty, dates in ISO 8601, JSON compact. */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Rows in psql's aligned layout (centred headers, `-+-` rule, numbers right-aligned) and a
 * `(N rows)` footer, so the runbook's queries read the same through `evalops sql` as through psql.
 */
export function renderTable(columns: string[], rows: unknown[][]): string {
  const cells = rows.map((row) => row.map(formatCell));
  const numeric = columns.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const centre = (text: string, width: number) => {
    const left = Math.floor((width - text.length) / 2);
    return ' '.repeat(left) + text + ' '.repeat(width - text.length - left);
  };
  const lines = [
    columns.map((c, i) => ` ${centre(c, widths[i]!)} `).join('|').trimEnd(),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...cells.map((r) => r.map((v, i) => ` ${numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)} `).join('|').trimEnd()),
  ];
  const footer = `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`;
  return columns.length ? `${lines.join('\n')}\n${footer}` : footer;
}

/** RFC 4180 CSV of the same rows. */
export function renderCsv(columns: string[], rows: unknown[][]): string {
  const esc = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [columns.map(esc).join(','), ...rows.map((r) => r.map((v) => esc(formatCell(v))).join(','))].join('\n');
}
