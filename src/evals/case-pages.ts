import { open } from 'node:fs/promises';
import { validation } from '../errors.ts';
import { CASE_ERRORED, CASE_PASSED, type ResultsIndex, ResultsIndexCache } from './results-index.ts';

/**
 * Pages of a finished run's cases for the dashboard and API clients: filtered by outcome, searched,
 * in dataset order, read through the run's results index (results-index.ts) so a page at offset
 * 99,000 costs what the first page costs.
 *
 * Search reads the whole file once per query (prefiltered on the raw line, parsed only where the
 * text occurs) and keeps the matching line numbers with the run's index for the next pages, so
 * `matched` is always an exact count and paging through the matches costs no further scan.
 */

/** Outcomes a case can have: `pass` (answered, every scorer passed), `fail` (answered, a scorer failed), `error` (no answer). */
export const CASE_STATUSES = ['pass', 'fail', 'error'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** Longest search text accepted. */
export const MAX_SEARCH_CHARS = 200;

export interface CaseQuery {
  offset: number;
  limit: number;
  /** Only cases with one of these outcomes; all when absent. */
  status?: CaseStatus[] | undefined;
  /** Case-insensitive text looked for in the id, vars, expected, output and error. */
  q?: string | undefined;
}

/** One line of results.jsonl with its position in the file. */
export interface CaseRecord {
  /** 0-based position of the case in results.jsonl (dataset order). */
  index: number;
  id: string;
  vars: Record<string, unknown>;
  expected: unknown;
  output: string | null;
  pass: boolean;
  scores: Record<string, { score: number | null; pass: boolean; reason: string }>;
  latency_ms: number | null;
  tokens: { prompt: number; completion: number; total: number } | null;
  error: string | null;
}

export interface CasePage {
  /** Cases in the run. */
  total: number;
  /** Cases matching the status filter and the search. */
  matched: number;
  offset: number;
  limit: number;
  cases: CaseRecord[];
}

/** Parses `pass,fail` into statuses, refusing anything else by name. */
export function parseCaseStatuses(value: string | undefined): CaseStatus[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const statuses = value.split(',').map((s) => s.trim());
  const bad = statuses.filter((s) => !(CASE_STATUSES as readonly string[]).includes(s));
  if (bad.length) throw validation(`status: ${bad.map((b) => `"${b}"`).join(', ')} is not a case status; use ${CASE_STATUSES.join(', ')} (comma-separated for several)`, { field: 'status' });
  return statuses as CaseStatus[];
}

/** Bit of a case's outcome in a status mask. */
function statusBit(flags: number): number {
  if (flags & CASE_ERRORED) return 4;
  return flags & CASE_PASSED ? 1 : 2;
}

function statusMask(statuses: readonly CaseStatus[] | undefined): number {
  if (!statuses || statuses.length === 0) return 7;
  let mask = 0;
  for (const s of statuses) mask |= s === 'pass' ? 1 : s === 'fail' ? 2 : 4;
  return mask;
}

/** The matches of the last few searches of one run. */
class SearchMemo {
  private readonly results = new Map<string, Uint32Array>();
  get(key: string): Uint32Array | undefined {
    const hit = this.results.get(key);
    if (hit) {
      this.results.delete(key);
      this.results.set(key, hit);
    }
    return hit;
  }
  set(key: string, matches: Uint32Array): void {
    this.results.set(key, matches);
    for (const old of this.results.keys()) {
      if (this.results.size <= 4) break;
      this.results.delete(old);
    }
  }
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** Case pages of finished runs, with an index per recently read run (bounded, in memory). */
export class CasePages {
  private readonly indexes: ResultsIndexCache<SearchMemo>;

  constructor(options: { maxCases?: number; maxRuns?: number } = {}) {
    this.indexes = new ResultsIndexCache(() => new SearchMemo(), options.maxCases, options.maxRuns);
  }

  /** Runs and cases currently indexed. */
  get cached(): { runs: number; cases: number } {
    return this.indexes.size;
  }

  /** The cases at the given line positions of run `runId`'s results.jsonl `file`, in ascending position order. */
  async read(runId: string, file: string, positions: readonly number[]): Promise<CaseRecord[]> {
    const { index } = await this.indexes.get(runId, file);
    const lines = [...new Set(positions)].filter((p) => p >= 0 && p < index.count).sort((a, b) => a - b);
    return readCases(index, lines);
  }

  /** One page of the cases of run `runId`, whose finished results.jsonl is `file`. */
  async page(runId: string, file: string, query: CaseQuery): Promise<CasePage> {
    const { index, extra: memo } = await this.indexes.get(runId, file);
    const mask = statusMask(query.status);
    const q = query.q?.trim().toLowerCase() ?? '';
    const end = query.offset + query.limit;
    let matched: number;
    let lines: number[];
    if (q !== '') {
      const key = `${mask}|${q}`;
      let matches = memo.get(key);
      if (!matches) {
        matches = await search(index, mask, q);
        memo.set(key, matches);
      }
      matched = matches.length;
      lines = Array.from(matches.subarray(query.offset, end));
    } else if (mask === 7) {
      matched = index.count;
      lines = [];
      for (let i = query.offset; i < Math.min(end, index.count); i += 1) lines.push(i);
    } else {
      matched = 0;
      lines = [];
      for (let i = 0; i < index.count; i += 1) {
        if (!(statusBit(index.flags[i]!) & mask)) continue;
        if (matched >= query.offset && matched < end) lines.push(i);
        matched += 1;
      }
    }
    return { total: index.count, matched, offset: query.offset, limit: query.limit, cases: await readCases(index, lines) };
  }
}

/** Reads and parses the given lines (ascending), one read per run of consecutive lines. */
async function readCases(index: ResultsIndex, lines: readonly number[]): Promise<CaseRecord[]> {
  if (lines.length === 0) return [];
  const out: CaseRecord[] = [];
  const handle = await open(index.file, 'r');
  try {
    let i = 0;
    while (i < lines.length) {
      let j = i;
      while (j + 1 < lines.length && lines[j + 1] === lines[j]! + 1) j += 1;
      const first = lines[i]!;
      const start = index.offsets[first]!;
      const buffer = Buffer.alloc(index.offsets[lines[j]! + 1]! - start);
      await readFully(handle, buffer, start);
      let line = first;
      for (const text of buffer.toString('utf8').split('\n')) {
        const trimmed = text.trim();
        if (trimmed === '') continue;
        out.push({ index: line, ...(JSON.parse(trimmed) as Omit<CaseRecord, 'index'>) });
        line += 1;
      }
      i = j + 1;
    }
  } finally {
    await handle.close();
  }
  return out;
}

async function readFully(handle: Awaited<ReturnType<typeof open>>, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error('results.jsonl is shorter than its index says: it changed while being read');
    done += bytesRead;
  }
}

/**
 * Every line (of the statuses in `mask`) whose case mentions `q` (lower case) in its id, vars,
 * expected, output or error. Each chunk of the file is decoded and lower-cased once and searched for
 * `q` as it appears inside a JSON string; only the lines holding it are parsed, to rule out hits in
 * key names or scorer reasons. (JSON escapes and key names are lower case already, so the lower-cased
 * line still parses, into lower-cased values.)
 */
async function search(index: ResultsIndex, mask: number, q: string): Promise<Uint32Array> {
  const needle = JSON.stringify(q).slice(1, -1);
  let matches = new Uint32Array(256);
  let found = 0;
  const handle = await open(index.file, 'r');
  try {
    let first = 0;
    let buffer = Buffer.alloc(0);
    while (first < index.count) {
      const base = index.offsets[first]!;
      let last = first + 1;
      while (last < index.count && index.offsets[last + 1]! - base <= SCAN_CHUNK_BYTES) last += 1;
      const size = index.offsets[last]! - base;
      if (buffer.length < size) buffer = Buffer.alloc(Math.max(size, SCAN_CHUNK_BYTES));
      await readFully(handle, buffer.subarray(0, size), base);
      const text = buffer.toString('utf8', 0, size).toLowerCase();
      // `line` is the index of the line starting at `cursor`; blank lines are not cases.
      let line = first;
      let cursor = 0;
      for (let at = text.indexOf(needle); at !== -1; ) {
        for (let nl = text.indexOf('\n', cursor); nl !== -1 && nl < at; nl = text.indexOf('\n', cursor)) {
          if (nl > cursor) line += 1;
          cursor = nl + 1;
        }
        const newline = text.indexOf('\n', at);
        const lineEnd = newline === -1 ? text.length : newline;
        if (statusBit(index.flags[line]!) & mask && mentions(JSON.parse(text.slice(cursor, lineEnd)) as CaseRecord, q)) {
          if (found === matches.length) {
            const bigger = new Uint32Array(matches.length * 2);
            bigger.set(matches);
            matches = bigger;
          }
          matches[found] = line;
          found += 1;
        }
        at = newline === -1 ? -1 : text.indexOf(needle, newline + 1);
      }
      first = last;
    }
  } finally {
    await handle.close();
  }
  return matches.slice(0, found);
}

const asText = (value: unknown): string => (typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value));

/** Whether the (lower-cased) case holds `q` in a field people search. */
function mentions(record: CaseRecord, q: string): boolean {
  if (asText(record.id).includes(q) || asText(record.output).includes(q) || asText(record.error).includes(q) || asText(record.expected).includes(q)) return true;
  if (record.vars && typeof record.vars === 'object') {
    for (const value of Object.values(record.vars)) if (asText(value).includes(q)) return true;
  }
  return false;
}
