import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { AppError, notFound, validation } from '../errors.ts';
import { type DatasetFormat, type DatasetRow, splitLines } from './dataset-parser.ts';
import { isSnapshotId, snapshotDataset } from './dataset-snapshot.ts';

/**
 * Dataset snapshots: an upload is parsed row by row and written as canonical JSONL to a temp file
 * under DATA_DIR/datasets/, hashed on the way; when every row is valid the file is renamed to its
 * content address (`<hex>.jsonl`), otherwise deleted. The same content uploaded again produces the
 * same id, and neither a new file nor a new row.
 */

export interface DatasetSnapshot {
  data_snapshot_id: string;
  name: string | null;
  source_format: string;
  row_count: number;
  byte_count: number;
  created_at: string;
}

export interface UploadOptions {
  format: DatasetFormat;
  name?: string | undefined;
  /** Bytes of upload accepted before it is refused with 413. */
  limitBytes: number;
}

type Row = { snapshot_id: string; name: string | null; source_format: string; row_count: number; byte_count: number; storage_path: string; created_at: Date };

const toSnapshot = (row: Row): DatasetSnapshot => ({
  data_snapshot_id: row.snapshot_id,
  name: row.name,
  source_format: row.source_format,
  row_count: Number(row.row_count),
  byte_count: Number(row.byte_count),
  created_at: row.created_at.toISOString(),
});

/** Where the snapshot with this id is stored, relative to DATA_DIR. */
export function snapshotRelativePath(snapshotId: string): string {
  return path.join('datasets', `${snapshotId.slice('sha256:'.length)}.jsonl`);
}

/** Refuses an upload once more than `limit` bytes went through. */
class ByteLimit extends Transform {
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(new AppError('PAYLOAD_TOO_LARGE', `body: the dataset is larger than the limit of ${this.limit} bytes (DATASET_UPLOAD_LIMIT_BYTES)`, { limit: this.limit }));
      return;
    }
    done(null, chunk);
  }
}

export function findSnapshot(db: Kysely<Database>, snapshotId: string): Promise<Row | undefined> {
  return db.selectFrom('dataset_snapshots').selectAll().where('snapshot_id', '=', snapshotId).executeTakeFirst();
}

export class DatasetService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dataDir: string,
  ) {}

  /** Streams `source` into a snapshot; `created: false` when the same content was stored before. */
  async upload(source: Readable, options: UploadOptions): Promise<{ snapshot: DatasetSnapshot; created: boolean }> {
    const dir = path.join(this.dataDir, 'datasets');
    await mkdir(dir, { recursive: true });
    const temp = path.join(dir, `.upload-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    const limit = new ByteLimit(options.limitBytes);
    source.on('error', (err) => limit.destroy(err));
    source.pipe(limit);
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
    let result;
    try {
      result = await snapshotDataset(limit, { format: options.format }, out);
    } catch (err) {
      out.destroy();
      source.unpipe(limit);
      source.resume();
      await rm(temp, { force: true });
      throw err;
    }
    if (result.errors.length > 0) {
      await rm(temp, { force: true });
      throw validation(`the dataset has invalid rows; nothing was stored: ${result.errors.slice(0, 5).join('; ')}${result.errors.length > 5 ? '; ...' : ''}`, {
        field: 'body',
        problems: result.errors,
      });
    }
    const relative = snapshotRelativePath(result.snapshotId);
    const final = path.join(this.dataDir, relative);
    if (existsSync(final)) {
      await rm(temp, { force: true });
    } else {
      // Durable before it is visible under its id.
      const handle = await open(temp, 'r');
      await handle.sync().finally(() => handle.close());
      await rename(temp, final);
    }
    const inserted = await this.db
      .insertInto('dataset_snapshots')
      .values({
        snapshot_id: result.snapshotId,
        name: options.name ?? null,
        source_format: options.format,
        row_count: result.rowCount,
        byte_count: result.byteCount,
        storage_path: relative,
      })
      .onConflict((oc) => oc.column('snapshot_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return { snapshot: toSnapshot(inserted), created: true };
    const existing = await findSnapshot(this.db, result.snapshotId);
    return { snapshot: toSnapshot(existing!), created: false };
  }

  async get(snapshotId: string): Promise<DatasetSnapshot> {
    return toSnapshot(await this.row(snapshotId));
  }

  async list(limit = 100): Promise<DatasetSnapshot[]> {
    const rows = await this.db.selectFrom('dataset_snapshots').selectAll().orderBy('created_at', 'desc').limit(limit).execute();
    return rows.map(toSnapshot);
  }

  /** The stored canonical JSONL, as a byte stream (downloads). */
  async openContent(snapshotId: string): Promise<Readable> {
    const row = await this.row(snapshotId);
    return createReadStream(this.contentPath(row.storage_path));
  }

  /**
   * Rows `offset` to `offset + limit - 1` of the snapshot as canonical JSONL lines: reading stops
   * after the last one asked for, so a preview of a large snapshot reads only its first rows.
   */
  async readRows(snapshotId: string, window: { offset: number; limit: number }): Promise<Readable> {
    const row = await this.row(snapshotId);
    const file = this.contentPath(row.storage_path);
    return Readable.from(rowWindow(file, window.offset, window.limit));
  }

  private contentPath(relative: string): string {
    const file = path.join(this.dataDir, relative);
    if (!existsSync(file)) {
      throw new AppError('UNAVAILABLE', `the file of this dataset snapshot is missing from DATA_DIR (${file}); upload the dataset again to restore it`);
    }
    return file;
  }

  private async row(snapshotId: string): Promise<Row> {
    if (!isSnapshotId(snapshotId)) throw validation(`data_snapshot_id: "${snapshotId}" is not a snapshot id (sha256: followed by 64 hex digits)`, { field: 'data_snapshot_id' });
    const row = await findSnapshot(this.db, snapshotId);
    if (!row) throw notFound('dataset snapshot', snapshotId);
    return row;
  }
}

/** A row of a stored snapshot, with its 0-based index and its canonical line (newline included). */
export interface SnapshotCase {
  index: number;
  row: DatasetRow;
  line: string;
}

/** Reads a stored snapshot file row by row (canonical JSONL), never holding more than one row. */
export async function* readSnapshotFile(file: string): AsyncGenerator<SnapshotCase> {
  let index = 0;
  for await (const item of splitLines(createReadStream(file))) {
    if ('tooLong' in item || item.text === '') continue;
    yield { index, row: JSON.parse(item.text) as DatasetRow, line: `${item.text}\n` };
    index += 1;
  }
}

/** The canonical lines of rows [offset, offset + limit) of a stored snapshot; stops reading after them. */
async function* rowWindow(file: string, offset: number, limit: number): AsyncGenerator<string> {
  if (limit <= 0) return;
  let index = 0;
  for await (const item of splitLines(createReadStream(file))) {
    if ('tooLong' in item || item.text === '') continue;
    if (index >= offset) yield `${item.text}\n`;
    index += 1;
    if (index >= offset + limit) return;
  }
}
