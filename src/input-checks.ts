import { isUtf8 } from 'node:buffer';
import { AppError, validation } from './errors.ts';

/**
 * The rules every piece of caller data passes, whichever way it comes in (a JSON body, a dataset row
 * streamed as JSONL or CSV, a query string): the HTTP layer applies them in src/http/input-guard.ts,
 * the dataset parsers row by row. They sit beside the error catalogue because both layers use them.
 */

/**
 * Deepest nesting of objects and arrays accepted in a request or a dataset row. Deeper JSON is an
 * attack, not data: recursive code (JSON.stringify, PostgreSQL's jsonb) would overflow its stack on it.
 */
export const MAX_JSON_DEPTH = 64;

// PostgreSQL text and jsonb cannot hold NUL, and refuse unpaired UTF-16 surrogates: refuse them here
// with a sentence instead of failing at the INSERT.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type Path = readonly (string | number)[];

function describe(where: string, path: Path): string {
  return path.length ? `${where}.${path.map(String).join('.').slice(0, 200)}` : where;
}

function checkString(where: string, path: Path, value: string): void {
  const bad = UNSTORABLE.exec(value);
  if (!bad) return;
  const what = bad[0] === '\u0000' ? 'a NUL character (\\u0000)' : 'an unpaired UTF-16 surrogate';
  throw validation(`${describe(where, path)}: contains ${what}, which cannot be stored`, { field: describe(where, path) });
}

/**
 * Numbers JSON carries faithfully: finite (1e400 parses to Infinity, which JSON writes as null), not
 * -0 (written back as 0), and integers within +-(2^53 - 1) (9007199254740993 parses to ...992).
 * A value outside is refused rather than stored as something other than what was sent.
 */
export function numberProblem(value: number): string | null {
  if (!Number.isFinite(value)) return 'is not a finite number (JSON numbers beyond +-1.8e308 cannot be stored)';
  if (Object.is(value, -0)) return '-0 is not accepted: JSON writes it back as 0; send 0';
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return `is an integer beyond +-${Number.MAX_SAFE_INTEGER} (2^53 - 1), which JSON numbers do not carry exactly; send it as a string`;
  }
  return null;
}

function checkNumber(where: string, path: Path, value: number): void {
  const problem = numberProblem(value);
  if (problem !== null) throw validation(`${describe(where, path)}: ${problem}`, { field: describe(where, path) });
}

/**
 * Walks a parsed body, query, params or dataset row without recursion: refuses nesting deeper than
 * MAX_JSON_DEPTH, strings (values or keys) PostgreSQL cannot store, and numbers JSON cannot
 * round-trip. `where` names the input in the error (`body`, `querystring`, `row`).
 */
export function checkInput(where: string, root: unknown): void {
  if (root === null || root === undefined) return;
  if (typeof root === 'string') return checkString(where, [], root);
  if (typeof root === 'number') return checkNumber(where, [], root);
  if (typeof root !== 'object' || isEmpty(root)) return;
  const stack: Array<{ value: object; depth: number; path: (string | number)[] }> = [{ value: root, depth: 1, path: [] }];
  while (stack.length) {
    const { value, depth, path } = stack.pop()!;
    if (depth > MAX_JSON_DEPTH) {
      throw new AppError('PAYLOAD_TOO_LARGE', `${describe(where, path.slice(0, 8))}: nested at least ${depth} levels deep, over the limit of ${MAX_JSON_DEPTH}`, { limit: MAX_JSON_DEPTH });
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries) {
      if (typeof key === 'string') checkString(where, path, key);
      if (typeof child === 'string') checkString(where, [...path, key], child);
      else if (typeof child === 'number') checkNumber(where, [...path, key], child);
      else if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1, path: depth < 8 ? [...path, key] : path });
    }
  }
}

/** Most requests have no params or query: skip the walk (and its allocations) for them. */
function isEmpty(value: object): boolean {
  for (const _ in value) return false;
  return true;
}

/** The error for bytes that are not UTF-8, for `where` (`body`, `querystring.q`). */
export function invalidUtf8(where: string, detail: string): AppError {
  return validation(`${where}: not valid UTF-8 (${detail}); send UTF-8 text`, { field: where });
}

/**
 * Checks a byte stream is UTF-8 as it arrives, chunk by chunk: a character split between two chunks
 * is held back until its last byte comes (Node's `isUtf8` is simdutf: a fraction of the cost of
 * decoding). Overlong forms and encoded surrogates (ED A0 80) are refused, as the standard says.
 */
export class Utf8Validator {
  #pending: Buffer = Buffer.alloc(0);
  #offset = 0;

  /** Throws (an AppError naming `where`) when the bytes so far cannot be the start of UTF-8 text. */
  push(chunk: Uint8Array, where = 'body'): void {
    const bytes = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const complete = completeLength(bytes);
    if (!isUtf8(bytes.subarray(0, complete))) {
      throw invalidUtf8(where, `an invalid byte sequence between bytes ${this.#offset} and ${this.#offset + complete}`);
    }
    this.#offset += complete;
    this.#pending = Buffer.from(bytes.subarray(complete));
  }

  /** Throws when the input ended inside a character. */
  end(where = 'body'): void {
    if (this.#pending.length > 0) throw invalidUtf8(where, `the last ${this.#pending.length} bytes are an incomplete character`);
  }
}

/**
 * Bytes of `buf` up to the start of a trailing character that may still be incomplete: the lead
 * byte of a 2-, 3- or 4-byte sequence with fewer continuation bytes after it than it announces.
 */
function completeLength(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back += 1) {
    const byte = buf[buf.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue;
    const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needs > back ? buf.length - back : buf.length;
  }
  return buf.length;
}
