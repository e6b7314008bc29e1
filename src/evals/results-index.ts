import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/**
 * A compact index of a finished run's results.jsonl: where each line starts and whether its case
 * passed or errored (9 bytes a case), so a page anywhere in a 100k-case run is one positioned read
 * instead of a scan from the start of the file. results.jsonl never changes once written (it is
 * written under a temporary name and renamed), so an index stays valid while the file keeps the
 * inode, size and mtime it was built from; anything else rebuilds it.
 */

/** Flag bits of a case in the index. */
export const CASE_PASSED = 1;
export const CASE_ERRORED = 2;

export interface ResultsIndex {
  readonly file: string;
  /** `inode:size:mtime` of the file the index was built from. */
  readonly identity: string;
  /** Cases (lines) in the file. */
  readonly count: number;
  /** `offsets[i]` is the byte where line i starts; `offsets[count]` is the end of the file. */
  readonly offsets: Float64Array;
  /** CASE_PASSED / CASE_ERRORED bits per line. */
  readonly flags: Uint8Array;
}

const NEWLINE = 0x0a;
const ERROR_NULL_END = Buffer.from(',"error":null}');
const STRING_END = Buffer.from('"}');
const ERROR_STRING_KEY = Buffer.from(',"error":"');
const SCORES_KEY = Buffer.from(',"scores":{');
const PASS_TRUE = Buffer.from('"pass":true');
const PASS_FALSE = Buffer.from('"pass":false');

/** Whether `line` holds `needle` just before byte `at`. */
const endsAt = (line: Buffer, at: number, needle: Buffer) => at >= needle.length && line.compare(needle, 0, needle.length, at - needle.length, at) === 0;

/**
 * The flags of one results line, without parsing it where the fixed key order of the line allows
 * (evaluation-runner.ts writes `id, vars, expected, output, pass, scores, latency_ms, tokens, error`):
 * `error` is the last key, so a line ending in `,"error":null}` is an answered case, and one ending
 * in a string with an `"error"` string key an errored one. An answered case's `pass` is the value
 * just before the last `,"scores":{` that follows a boolean `"pass"` (string values are JSON-escaped,
 * so their quotes never look like keys, and what follows `scores` holds no such key). A line that
 * does not look like that is parsed.
 */
export function classifyResultsLine(line: Buffer): number {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0d || line[end - 1] === 0x20)) end -= 1;
  if (end === 0) return 0;
  if (endsAt(line, end, ERROR_NULL_END)) {
    for (let at = line.lastIndexOf(SCORES_KEY, end); at > 0; at = line.lastIndexOf(SCORES_KEY, at - 1)) {
      if (endsAt(line, at, PASS_TRUE)) return CASE_PASSED;
      if (endsAt(line, at, PASS_FALSE)) return 0;
    }
  } else if (endsAt(line, end, STRING_END) && line.lastIndexOf(ERROR_STRING_KEY, end) !== -1) {
    return CASE_ERRORED;
  }
  const record = JSON.parse(line.toString('utf8', 0, end)) as { pass?: unknown; error?: unknown };
  return (record.error !== null && record.error !== undefined ? CASE_ERRORED : 0) | (record.pass === true ? CASE_PASSED : 0);
}

/** The identity of a file as the index records it. */
export async function fileIdentity(file: string): Promise<string> {
  const s = await stat(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Reads `file` once, in 1 MiB chunks, into an index. */
export async function buildResultsIndex(file: string): Promise<ResultsIndex> {
  const identity = await fileIdentity(file);
  let offsets = new Float64Array(1024);
  let flags = new Uint8Array(1024);
  let count = 0;
  let position = 0;
  let lineStart = 0;
  let carry: Buffer[] = [];
  const push = (line: Buffer, start: number) => {
    if (line.length === 0) return; // a blank line is not a case
    if (count + 1 >= offsets.length) {
      const bigger = new Float64Array(offsets.length * 2);
      bigger.set(offsets);
      offsets = bigger;
      const biggerFlags = new Uint8Array(flags.length * 2);
      biggerFlags.set(flags);
      flags = biggerFlags;
    }
    offsets[count] = start;
    flags[count] = classifyResultsLine(line);
    count += 1;
  };
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(NEWLINE, from); nl !== -1; nl = chunk.indexOf(NEWLINE, from)) {
      const piece = chunk.subarray(from, nl);
      const line = carry.length ? Buffer.concat([...carry, piece]) : piece;
      carry = [];
      push(line, lineStart);
      from = nl + 1;
      lineStart = position + from;
    }
    if (from < chunk.length) carry.push(chunk.subarray(from));
    position += chunk.length;
  }
  if (carry.length) push(Buffer.concat(carry), lineStart);
  // A line ends where the next one starts (its newline included), the last one at the end of the file.
  offsets[count] = position;
  return { file, identity, count, offsets: offsets.slice(0, count + 1), flags: flags.slice(0, count) };
}

/**
 * The indexes of the most recently read runs, bounded by the cases they cover (the newest one is
 * always kept, whatever its size). Concurrent first requests for a run share one build.
 */
export class ResultsIndexCache<Extra = unknown> {
  private readonly entries = new Map<string, { index: ResultsIndex; extra: Extra }>();
  private readonly building = new Map<string, Promise<{ index: ResultsIndex; extra: Extra }>>();
  private cases = 0;

  constructor(
    private readonly makeExtra: () => Extra,
    /** Total cases indexed before the least recently used runs are dropped. @defaultValue 1,000,000 (about 9 MB) */
    private readonly maxCases = 1_000_000,
    /** Runs kept at most. @defaultValue 16 */
    private readonly maxRuns = 16,
  ) {}

  /** The index of `file` (results.jsonl of run `key`), built when missing or stale. */
  async get(key: string, file: string): Promise<{ index: ResultsIndex; extra: Extra }> {
    const identity = await fileIdentity(file);
    const cached = this.entries.get(key);
    if (cached && cached.index.identity === identity && cached.index.file === file) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const pending = this.building.get(key);
    if (pending) return pending;
    const build = (async () => {
      const index = await buildResultsIndex(file);
      const entry = { index, extra: this.makeExtra() };
      this.remove(key);
      this.entries.set(key, entry);
      this.cases += index.count;
      this.evict();
      return entry;
    })().finally(() => this.building.delete(key));
    this.building.set(key, build);
    return build;
  }

  /** Runs and cases currently indexed (for tests and diagnostics). */
  get size(): { runs: number; cases: number } {
    return { runs: this.entries.size, cases: this.cases };
  }

  private remove(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.entries.delete(key);
    this.cases -= old.index.count;
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= 1 || (this.cases <= this.maxCases && this.entries.size <= this.maxRuns)) return;
      this.remove(key);
    }
  }
}
