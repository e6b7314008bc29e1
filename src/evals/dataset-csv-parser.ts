import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import {
  describeType,
  IdRegistry,
  isPlainObject,
  MAX_ID_LENGTH,
  normaliseId,
  rowProblem,
  setOwn,
  type DatasetRow,
  type DatasetSource,
  type RowErrorCollector,
} from './dataset-row.ts';

/**
 * CSV datasets (csv-parse, streamed): a header row; columns `id`, `expected` and `metadata` (JSON
 * text) map to those fields, `vars.x` and any other column to `vars`. Every value is a string, as CSV
 * has no types: a JSONL row `{"vars": {"n": 1}}` and a CSV cell `1` are different rows.
 */

interface CsvRecord {
  record: string[];
  raw: string;
  info: { lines: number };
}

type ColumnTarget = { kind: 'id' | 'expected' | 'metadata' } | { kind: 'var'; name: string };

/** Yields the valid rows of a CSV source; invalid ones go to `errors` with their line. */
export async function* parseCsvRows(
  source: DatasetSource,
  errors: RowErrorCollector,
  maxRowChars: number,
): AsyncGenerator<DatasetRow, void, undefined> {
  const parser = parseCsv({
    bom: true,
    info: true,
    raw: true,
    // Without an explicit list csv-parse guesses the delimiter from the first record and then
    // miscounts lines in files that mix \n and \r\n.
    record_delimiter: ['\r\n', '\n'],
    skip_empty_lines: true,
    // Rows with the wrong number of fields are reported by us, with the line, instead of aborting the parse.
    relax_column_count: true,
    max_record_size: maxRowChars,
  });
  const input = Readable.from(source);
  input.on('error', (error) => parser.destroy(error));
  input.pipe(parser);
  const ids = new IdRegistry();
  let columns: ColumnTarget[] | null = null;
  let lastLine = 0;
  try {
    for await (const item of parser as AsyncIterable<CsvRecord>) {
      const line = startLine(item);
      lastLine = item.info.lines;
      if (columns === null) {
        const header = csvHeader(item.record);
        if (typeof header === 'string') {
          errors.add(line, header);
          return;
        }
        columns = header;
        continue;
      }
      const index = ids.nextIndex();
      const row = csvRow(item.record, columns, index);
      if (typeof row === 'string') {
        errors.add(line, row);
        continue;
      }
      const problem = rowProblem(row);
      if (problem !== null) {
        errors.add(line, problem);
        continue;
      }
      const duplicate = ids.claim(row.id, line);
      if (duplicate !== null) {
        errors.add(line, duplicate);
        continue;
      }
      yield row;
    }
  } catch (error) {
    // Syntax errors (an unclosed quote, ...) end the parse; anything else (I/O) is not the file's fault.
    if (!isCsvError(error)) throw error;
    const at = typeof error.lines === 'number' ? error.lines : lastLine + 1;
    errors.add(at, `CSV syntax error: ${error.message}`);
    return;
  } finally {
    input.unpipe(parser);
    input.destroy();
    parser.destroy();
  }
  if (columns === null) errors.add(1, 'the file is empty: a CSV dataset needs a header row and at least one row');
  else if (ids.count === 0) errors.add(1, 'the CSV file has a header but no rows');
}

/** First line of a record: csv-parse reports the last one, which differs for quoted multi-line fields. */
function startLine(item: CsvRecord): number {
  const body = item.raw.replace(/^[\r\n]+/, '').replace(/(\r\n|\n|\r)$/, '');
  let inner = 0;
  for (let i = body.indexOf('\n'); i !== -1; i = body.indexOf('\n', i + 1)) inner += 1;
  return item.info.lines - inner;
}

function csvHeader(names: string[]): ColumnTarget[] | string {
  const seen = new Map<string, string>();
  const targets: ColumnTarget[] = [];
  for (const [i, rawName] of names.entries()) {
    const name = rawName.trim();
    if (name === '') return `header column ${i + 1} has an empty name`;
    let target: ColumnTarget;
    if (name === 'id' || name === 'expected' || name === 'metadata') target = { kind: name };
    else if (name.startsWith('vars.')) target = { kind: 'var', name: name.slice('vars.'.length) };
    else target = { kind: 'var', name };
    if (target.kind === 'var' && target.name === '') return `header column ${i + 1} ('${name}') names no variable`;
    const key = target.kind === 'var' ? `var:${target.name}` : target.kind;
    const clash = seen.get(key);
    if (clash !== undefined) return `header columns '${clash}' and '${name}' map to the same field`;
    seen.set(key, name);
    targets.push(target);
  }
  return targets;
}

function csvRow(record: string[], columns: ColumnTarget[], index: number): DatasetRow | string {
  if (record.length !== columns.length) {
    return `the row has ${record.length} ${record.length === 1 ? 'field' : 'fields'}, the header has ${columns.length}`;
  }
  const vars: Record<string, unknown> = {};
  let id: string | null = null;
  let expected: string | undefined;
  let metadata: Record<string, unknown> | undefined;
  for (const [i, column] of columns.entries()) {
    const cell = record[i] as string;
    switch (column.kind) {
      case 'var':
        setOwn(vars, column.name, cell);
        break;
      case 'id':
        id = cell.trim() === '' ? null : cell;
        break;
      // CSV cannot tell an empty string from a missing value; an empty cell means "no expected value".
      case 'expected':
        if (cell !== '') expected = cell;
        break;
      case 'metadata': {
        if (cell.trim() === '') break;
        let parsed: unknown;
        try {
          parsed = JSON.parse(cell);
        } catch (error) {
          return `metadata is not valid JSON (${error instanceof Error ? error.message : String(error)})`;
        }
        if (!isPlainObject(parsed)) return `metadata must be a JSON object, got ${describeType(parsed)}`;
        metadata = parsed;
        break;
      }
    }
  }
  const rowId = normaliseId(id ?? undefined, index);
  if (rowId === null) return `id must be at most ${MAX_ID_LENGTH} characters`;
  const row: DatasetRow = { id: rowId, vars };
  if (expected !== undefined) row.expected = expected;
  if (metadata !== undefined) row.metadata = metadata;
  return row;
}

function isCsvError(error: unknown): error is Error & { code: string; lines?: number } {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('CSV_');
}
