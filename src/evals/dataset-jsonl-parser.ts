import {
  describeType,
  IdRegistry,
  isPlainObject,
  MAX_ID_LENGTH,
  normaliseId,
  rowProblem,
  setOwn,
  truncate,
  type DatasetRow,
  type DatasetSource,
  type RowErrorCollector,
} from './dataset-row.ts';

/** JSONL datasets: one JSON object per line, blank lines skipped, flat or `{id, vars, expected, metadata}` rows. */

const RESERVED_KEYS = new Set(['id', 'vars', 'expected', 'metadata']);

/** Splits decoded text into lines without buffering more than one line (plus one chunk). */
export async function* splitLines(
  source: DatasetSource,
  maxLineChars = 10_000_000,
): AsyncGenerator<{ line: number; text: string } | { line: number; tooLong: true }> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let parts: string[] = [];
  let partsLength = 0;
  let overflow = false;
  let line = 0;
  const flush = function* (): Generator<{ line: number; text: string } | { line: number; tooLong: true }> {
    line += 1;
    if (overflow) {
      yield { line, tooLong: true };
    } else {
      let text = parts.join('');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (line === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
      yield { line, text };
    }
    parts = [];
    partsLength = 0;
    overflow = false;
  };
  const push = (piece: string): void => {
    if (overflow) return;
    if (partsLength + piece.length > maxLineChars) {
      // Keep counting lines but stop holding the text: one huge line must not exhaust memory.
      overflow = true;
      parts = [];
      partsLength = 0;
      return;
    }
    parts.push(piece);
    partsLength += piece.length;
  };
  for await (const chunk of source) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      push(text.slice(start, nl));
      yield* flush();
      start = nl + 1;
    }
    if (start < text.length) push(text.slice(start));
  }
  const tail = decoder.decode();
  if (tail.length > 0) push(tail);
  if (partsLength > 0 || overflow) yield* flush();
}

/** Yields the valid rows of a JSONL source; invalid ones go to `errors` with their line. */
export async function* parseJsonl(
  source: DatasetSource,
  errors: RowErrorCollector,
  maxRowChars: number,
): AsyncGenerator<DatasetRow, void, undefined> {
  const ids = new IdRegistry();
  for await (const item of splitLines(source, maxRowChars)) {
    if ('tooLong' in item) {
      ids.nextIndex();
      errors.add(item.line, `the line is longer than ${maxRowChars} characters`);
      continue;
    }
    if (item.text.trim() === '') continue;
    const index = ids.nextIndex();
    let value: unknown;
    try {
      value = JSON.parse(item.text);
    } catch (error) {
      errors.add(item.line, `invalid JSON (${error instanceof Error ? error.message : String(error)})`);
      continue;
    }
    // Before anything walks the row recursively (the canonical writer, PostgreSQL's jsonb).
    const problem = rowProblem(value);
    if (problem !== null) {
      errors.add(item.line, problem);
      continue;
    }
    const row = jsonRow(value, index);
    if (typeof row === 'string') {
      errors.add(item.line, row);
      continue;
    }
    const duplicate = ids.claim(row.id, item.line);
    if (duplicate !== null) {
      errors.add(item.line, duplicate);
      continue;
    }
    yield row;
  }
  if (ids.count === 0) errors.add(1, 'the file has no rows');
}

/** Validates one parsed JSONL value; returns the row or a sentence saying what is wrong. */
function jsonRow(value: unknown, index: number): DatasetRow | string {
  if (!isPlainObject(value)) return `a row must be a JSON object, got ${describeType(value)}`;
  const id = normaliseId(value.id, index);
  if (id === null) return `id must be a non-empty string (at most ${MAX_ID_LENGTH} characters) or an integer`;
  if (value.vars !== undefined && !isPlainObject(value.vars)) {
    return `vars must be a JSON object, got ${describeType(value.vars)}`;
  }
  if (value.metadata !== undefined && !isPlainObject(value.metadata)) {
    return `metadata must be a JSON object, got ${describeType(value.metadata)}`;
  }
  // Flat rows (`{"question": ..., "answer": ...}`) are common: any key that is not reserved is a var,
  // exactly as a CSV column is.
  const vars: Record<string, unknown> = { ...(value.vars ?? {}) };
  for (const [key, item] of Object.entries(value)) {
    if (RESERVED_KEYS.has(key)) continue;
    if (Object.hasOwn(vars, key)) return `'${truncate(key)}' is given both at the top level and in vars`;
    setOwn(vars, key, item);
  }
  const row: DatasetRow = { id, vars };
  if (value.expected !== undefined) row.expected = value.expected;
  if (value.metadata !== undefined) row.metadata = value.metadata;
  return row;
}
