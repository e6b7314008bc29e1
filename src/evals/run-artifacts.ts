import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';

/**
 * The files of a run under DATA_DIR/runs/<run_id>/: results.jsonl, summary.json and
 * run_metadata.json. Every file is written under a temporary name, fsynced and renamed, so a reader
 * (or a crash) never sees half a file under a final name.
 */

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';
export const METADATA_FILE = 'run_metadata.json';
export const RUN_FILES = [RESULTS_FILE, SUMMARY_FILE, METADATA_FILE] as const;

/** What the API and `eval verify` know about a written file. */
export interface FileInfo {
  name: string;
  bytes: number;
  sha256: string;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** DATA_DIR/runs/<run_id>; the id must be a UUID so it can never walk out of runs/. */
export function runDirectory(dataDir: string, runId: string): string {
  if (!RUN_ID.test(runId)) throw new Error(`not a run id: ${runId}`);
  return path.join(dataDir, 'runs', runId);
}

export async function ensureRunDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

const tempName = (file: string) => `${file}.tmp-${process.pid}`;
const CHUNK_CHARS = 64 * 1024;

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a small file atomically (temp, fsync, rename). */
export async function writeFileAtomic(dir: string, name: string, content: string): Promise<FileInfo> {
  const final = path.join(dir, name);
  const temp = tempName(final);
  await writeFile(temp, content, { mode: 0o644 });
  await fsyncFile(temp);
  await rename(temp, final);
  return { name, bytes: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') };
}

/**
 * A streamed file written under a temporary name and hashed on the way; `commit()` makes it
 * visible under its final name, `keepPartial()` leaves it as `<name>.partial` for inspection.
 */
export class AtomicFileWriter {
  readonly temp: string;
  private readonly stream: WriteStream;
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private failure: Error | null = null;
  /** Lines are gathered into chunks: one write call per line cost more CPU than the rest of a case. */
  private buffered: string[] = [];
  private bufferedLength = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
  ) {
    this.temp = tempName(path.join(dir, name));
    this.stream = createWriteStream(this.temp, { flags: 'w', mode: 0o644 });
    this.stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /** Writes `text` (buffered up to 64 KiB), waiting when the stream asks for backpressure. */
  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.buffered.push(text);
    this.bufferedLength += text.length;
    if (this.bufferedLength >= CHUNK_CHARS) await this.flushBuffer();
  }

  private async flushBuffer(): Promise<void> {
    if (this.buffered.length === 0) return;
    const buffer = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.bufferedLength = 0;
    this.hash.update(buffer);
    this.bytes += buffer.length;
    if (!this.stream.write(buffer)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          this.stream.off('drain', onDrain);
          reject(err);
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', onError);
      });
    }
  }

  async commit(): Promise<FileInfo> {
    await this.flushBuffer();
    this.stream.end();
    await finished(this.stream);
    if (this.failure) throw this.failure;
    await fsyncFile(this.temp);
    await rename(this.temp, path.join(this.dir, this.name));
    return { name: this.name, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Closes and renames the unfinished file to `<name>.partial`; never throws. */
  async keepPartial(): Promise<void> {
    try {
      await this.flushBuffer().catch(() => undefined);
      this.stream.end();
      await finished(this.stream).catch(() => undefined);
      await rename(this.temp, path.join(this.dir, `${this.name}.partial`));
    } catch {
      /* best effort: the run's error message is what matters */
    }
  }
}

/** Size and sha256 of a file, streamed. */
export async function hashFile(file: string): Promise<FileInfo> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { name: path.basename(file), bytes, sha256: hash.digest('hex') };
}

/** The regular files of a run folder with their sizes and hashes (temporary files left out). */
export async function listRunFiles(dir: string): Promise<FileInfo[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: FileInfo[] = [];
  for (const name of names.sort()) {
    if (name.includes('.tmp-')) continue;
    // lstat: a symlink planted in the folder is not a run file (listing it would hash what it points to).
    const s = await lstat(path.join(dir, name)).catch(() => null);
    if (s?.isFile()) out.push(await hashFile(path.join(dir, name)));
  }
  return out;
}

/** Removes stale temporary files left by an earlier, crashed attempt. */
export async function removeTemporaryFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.includes('.tmp-') || name.endsWith('.partial')) await rm(path.join(dir, name), { force: true });
  }
}

/** A plain file name: no separators, no leading dot, nothing that could name a parent. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$/;

/**
 * The path of `name` inside `dir`, or null when it is not a plain name of a regular file that
 * really lies in `dir` (symlinks are resolved before the check).
 */
export async function resolveRunFile(dir: string, name: string): Promise<string | null> {
  if (!SAFE_NAME.test(name) || name.includes('..')) return null;
  try {
    const realDir = await realpath(dir);
    const real = await realpath(path.join(dir, name));
    if (path.dirname(real) !== realDir) return null;
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}
