import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { AppError, notFound, validation } from '../errors.ts';
import { Utf8Validator } from '../input-checks.ts';
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

/**
 * The upload's first stage: refuses it once more than `limit` bytes went through, and as soon as its
 * bytes stop being UTF-8 (a character split between chunks is waited for, not refused).
 */
class UploadGuard extends Transform {
  bytes = 0;
  readonly #utf8 = new Utf8Validator();
  #idle: NodeJS.Timeout | undefined;
  constructor(
    private readonly limit: number,
    private readonly idleMs: number,
  ) {
    super();
    this.once('close', () => clearTimeout(this.#idle));
  }
  // The clock runs only while the parser waits for bytes: a slow disk downstream is not a stalled
  // client. A client that stops sending without closing would otherwise hold the upload (and its
  // temp file) forever.
  override _read(size: number): void {
    this.#idle ??= setTimeout(() => {
      this.destroy(validation(`body: no bytes of the upload arrived for ${this.idleMs} ms (DATASET_UPLOAD_IDLE_MS); nothing was stored`, { field: 'body' }));
    }, this.idleMs).unref();
    super._read(size);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(new AppError('PAYLOAD_TOO_LARGE', `body: the dataset is larger than the limit of ${this.limit} bytes (DATASET_UPLOAD_LIMIT_BYTES)`, { limit: this.limit }));
      return;
    }
    try {
      this.#utf8.push(chunk);
    } catch (error) {
      done(error as Error);
      return;
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    try {
      this.#utf8.end();
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  }
}

/** File-system errors that mean DATA_DIR cannot take writes: the operator's to fix, not the caller's. */
const STORAGE_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EEXIST', 'EISDIR', 'EMFILE', 'ENFILE', 'EIO', 'ELOOP', 'ENAMETOOLONG']);

/**
 * A 503 naming the errno and the folder under DATA_DIR (the absolute path goes to the log line with
 * the error_id, through `details`). 503 rather than 500: nothing in evalops is broken, a dependency
 * (the disk) refuses writes, and it says so to clients, load balancers and the runbook's first check.
 */
function storageError(error: NodeJS.ErrnoException, dataDir: string, file: string): AppError {
  const where = path.join('DATA_DIR', path.relative(dataDir, file));
  const reason = `${error.code}: ${error.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')}`;
  return new AppError('UNAVAILABLE', `cannot store the dataset: ${error.syscall ?? 'write'} on ${where} failed (${reason}); the operator must make DATA_DIR writable (or free space); nothing was stored`, {
    path: file,
    errno: error.code,
  });
}

const isStorageError = (error: unknown): error is NodeJS.ErrnoException =>
  error instanceof Error && STORAGE_ERRNOS.has(String((error as NodeJS.ErrnoException).code)) && typeof (error as NodeJS.ErrnoException).syscall === 'string';

/** The client closed the connection before the end of its upload: its fault, and nobody reads the answer. */
const isCutOff = (error: unknown): boolean =>
  error instanceof Error && ['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED'].includes(String((error as NodeJS.ErrnoException).code));

export function findSnapshot(db: Kysely<Database>, snapshotId: string): Promise<Row | undefined> {
  return db.selectFrom('dataset_snapshots').selectAll().where('snapshot_id', '=', snapshotId).executeTakeFirst();
}

export class DatasetService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dataDir: string,
    /** `uploadIdleMs`: an upload from which nothing arrives for this long is refused (DATASET_UPLOAD_IDLE_MS). */
    private readonly options: { uploadIdleMs?: number } = {},
  ) {}

  /**
   * Streams `source` into a snapshot; `created: false` when the same content was stored before. On
   * every failure (invalid bytes or rows, the client gone, a short or long body, a disk error) the
   * temp file is closed and deleted and the source released before the error is thrown.
   */
  async upload(source: Readable, options: UploadOptions): Promise<{ snapshot: DatasetSnapshot; created: boolean }> {
    const dir = path.join(this.dataDir, 'datasets');
    const temp = path.join(dir, `.upload-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    const guard = new UploadGuard(options.limitBytes, this.options.uploadIdleMs ?? 30_000);
    // Its errors reach the parser through iteration; until the parser iterates, nobody else listens.
    guard.on('error', () => {});
    let stopWatching = (): void => {};
    let result;
    let out: import('node:fs').WriteStream | undefined;
    try {
      try {
        await mkdir(dir, { recursive: true });
        out = (await open(temp, 'wx', 0o644)).createWriteStream();
      } catch (error) {
        throw isStorageError(error) ? storageError(error, this.dataDir, dir) : error;
      }
      // finished() reports a source error, or a source already destroyed (the client left before this
      // handler ran: piping it would wait forever), to the guard, which the parser reads.
      stopWatching = finished(source, (error) => {
        if (error && !guard.destroyed) guard.destroy(error);
      });
      source.pipe(guard);
      result = await snapshotDataset(guard, { format: options.format }, out);
    } catch (err) {
      stopWatching();
      out?.destroy();
      // Drain what the client still sends so that it reads the answer instead of a reset connection.
      source.unpipe(guard);
      guard.destroy();
      source.resume();
      await rm(temp, { force: true });
      if (isStorageError(err)) throw storageError(err, this.dataDir, temp);
      if (isCutOff(err)) throw validation('body: the upload ended before all of it arrived (the connection closed or the body was shorter than its Content-Length); nothing was stored', { field: 'body' });
      throw err;
    }
    stopWatching();
    if (!source.readableEnded) {
      // The parser stopped early (a CSV header error): read the rest so the client gets the answer.
      source.unpipe(guard);
      source.resume();
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
      try {
        // Durable before it is visible under its id.
        const handle = await open(temp, 'r');
        await handle.sync().finally(() => handle.close());
        await rename(temp, final);
      } catch (error) {
        await rm(temp, { force: true });
        throw isStorageError(error) ? storageError(error, this.dataDir, final) : error;
      }
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
