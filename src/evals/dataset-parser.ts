import { parseCsvRows } from './dataset-csv-parser.ts';
import { parseJsonl } from './dataset-jsonl-parser.ts';
import { RowErrorCollector, type DatasetRow, type DatasetSource } from './dataset-row.ts';

export { RowErrorCollector, type DatasetRow, type DatasetSource, type RowError } from './dataset-row.ts';
export { splitLines } from './dataset-jsonl-parser.ts';

/**
 * Streaming parsers for dataset uploads (JSONL and CSV). Rows are yielded one at a time from an
 * async generator so a 100k-row upload never sits whole in memory; the only state that grows with
 * the file is the set of row ids (needed to reject duplicates) and at most `maxErrors` messages.
 */

export type DatasetFormat = 'jsonl' | 'csv';

export interface ParseDatasetOptions {
  format: DatasetFormat;
  /** How many row errors to keep word for word; later ones are only counted. @defaultValue 20 */
  maxErrors?: number;
  /** Longest accepted line (JSONL) or record (CSV), in characters; bounds memory per row. @defaultValue 10_000_000 */
  maxRowChars?: number;
}

export interface ParsedDataset {
  /** Valid rows in file order. Consume it fully before reading `errors`. */
  rows: AsyncGenerator<DatasetRow, void, undefined>;
  errors: RowErrorCollector;
}

/** Picks the format from a file name (`.jsonl`/`.ndjson`/`.json` -> jsonl, `.csv` -> csv), else null. */
export function datasetFormatFromFilename(filename: string): DatasetFormat | null {
  const lower = filename.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl';
  if (lower.endsWith('.csv')) return 'csv';
  return null;
}

/** Starts parsing `source`; rows stream out of `rows`, invalid ones land in `errors`. */
export function parseDataset(source: DatasetSource, options: ParseDatasetOptions): ParsedDataset {
  const errors = new RowErrorCollector(options.maxErrors ?? 20);
  const maxRowChars = options.maxRowChars ?? 10_000_000;
  const rows =
    options.format === 'jsonl' ? parseJsonl(source, errors, maxRowChars) : parseCsvRows(source, errors, maxRowChars);
  return { rows, errors };
}
