import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { canonicalJson } from './canonical-json.ts';
import {
  parseDataset,
  type DatasetRow,
  type DatasetSource,
  type ParseDatasetOptions,
  type ParsedDataset,
  type RowError,
} from './dataset-parser.ts';

export { canonicalJson } from './canonical-json.ts';

/**
 * A dataset snapshot is stored as canonical JSONL: one canonical JSON object per row
 * (`{"expected":...,"id":...,"metadata":...,"vars":{...}}`, absent fields omitted), each line ended
 * by `\n`. Its id is the SHA-256 of exactly those bytes, so the same rows give the same id whether
 * they were uploaded as JSONL or CSV, with keys in any order or any whitespace.
 */

/** `sha256:` followed by 64 lowercase hex digits. */
export const SNAPSHOT_ID_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** True when `text` has the form of a `data_snapshot_id`. */
export function isSnapshotId(text: string): boolean {
  return SNAPSHOT_ID_PATTERN.test(text);
}

/** The canonical line (with its trailing `\n`) of one row. */
export function canonicalRowLine(row: DatasetRow): string {
  const canonical: Record<string, unknown> = { id: row.id, vars: row.vars };
  if (row.expected !== undefined) canonical.expected = row.expected;
  if (row.metadata !== undefined) canonical.metadata = row.metadata;
  return `${canonicalJson(canonical)}\n`;
}

export interface SnapshotResult {
  /** `sha256:<hex>` of the canonical JSONL; meaningful only when `errors` is empty. */
  snapshotId: string;
  rowCount: number;
  /** Bytes written to the output. */
  byteCount: number;
  /** Invalid rows (`line N: ...` sentences, capped, with a final `... and N more` line). Empty when valid. */
  errors: string[];
  /** The same errors in structured form (the kept ones only). */
  rowErrors: readonly RowError[];
}

export interface WriteSnapshotOptions {
  /** End `out` and wait until it has flushed. @defaultValue true */
  end?: boolean;
}

/**
 * Consumes parsed rows, writes the canonical JSONL to `out` (respecting backpressure) and hashes it
 * on the way. The caller writes to a temp file and renames it to the snapshot id when `errors` is
 * empty, or deletes it otherwise: rows keep being consumed after an error so that every invalid row
 * (up to the cap) is reported in one answer. If reading the source fails, the promise rejects and
 * `out` is left open: the caller destroys it and deletes the temp file.
 */
export async function writeCanonicalSnapshot(
  parsed: ParsedDataset,
  out: Writable,
  options: WriteSnapshotOptions = {},
): Promise<SnapshotResult> {
  const hash = createHash('sha256');
  let rowCount = 0;
  let byteCount = 0;
  let outError: unknown = null;
  const onError = (error: unknown): void => {
    outError ??= error;
  };
  out.on('error', onError);
  try {
    for await (const row of parsed.rows) {
      if (outError !== null) throw outError;
      const bytes = Buffer.from(canonicalRowLine(row), 'utf8');
      hash.update(bytes);
      rowCount += 1;
      byteCount += bytes.length;
      // Rows after the first error are still validated but not written: the file will be discarded.
      if (parsed.errors.hasErrors) continue;
      if (!out.write(bytes)) await waitForDrain(out, () => outError);
    }
    if (options.end ?? true) {
      out.end();
      await finished(out);
    }
    if (outError !== null) throw outError;
  } finally {
    out.off('error', onError);
  }
  return {
    snapshotId: `sha256:${hash.digest('hex')}`,
    rowCount,
    byteCount,
    errors: parsed.errors.messages(),
    rowErrors: parsed.errors.errors,
  };
}

/** Parses `source` in `options.format` and writes its canonical snapshot to `out` (see `writeCanonicalSnapshot`). */
export async function snapshotDataset(
  source: DatasetSource,
  options: ParseDatasetOptions,
  out: Writable,
  writeOptions: WriteSnapshotOptions = {},
): Promise<SnapshotResult> {
  return writeCanonicalSnapshot(parseDataset(source, options), out, writeOptions);
}

/** Computes the snapshot id of rows without writing them anywhere (e.g. to check before storing). */
export async function computeSnapshotId(rows: AsyncIterable<DatasetRow> | Iterable<DatasetRow>): Promise<string> {
  const hash = createHash('sha256');
  for await (const row of rows) hash.update(canonicalRowLine(row), 'utf8');
  return `sha256:${hash.digest('hex')}`;
}

async function waitForDrain(out: Writable, failure: () => unknown): Promise<void> {
  const error = failure();
  if (error !== null) throw error;
  // Settle on 'error' and 'close' too, so a failing or destroyed output never leaves the upload hanging.
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: unknown): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the snapshot output closed before all rows were written'));
    };
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}
