import { checkInput } from '../input-checks.ts';

/**
 * The dataset row model shared by the JSONL and CSV parsers: the row type, error collection with
 * line numbers, and id bookkeeping (auto ids, duplicate detection).
 */

/** One evaluation case. `id` is always set after parsing (the 1-based row index when absent). */
export interface DatasetRow {
  id: string;
  vars: Record<string, unknown>;
  expected?: unknown;
  metadata?: Record<string, unknown>;
}

/** An invalid row: its 1-based line number in the uploaded file and one sentence saying what is wrong. */
export interface RowError {
  line: number;
  message: string;
}

/** What a row-by-row source may yield: a Node `Readable`, a generator of chunks, ... */
export type DatasetSource = AsyncIterable<Uint8Array | string>;

export const MAX_ID_LENGTH = 256;

/** Collects row errors, keeping the first `limit` and counting the rest. */
export class RowErrorCollector {
  readonly #limit: number;
  readonly #kept: RowError[] = [];
  #total = 0;

  constructor(limit = 20) {
    this.#limit = limit;
  }

  /** Records one invalid row. */
  add(line: number, message: string): void {
    this.#total += 1;
    if (this.#kept.length < this.#limit) this.#kept.push({ line, message });
  }

  get errors(): readonly RowError[] {
    return this.#kept;
  }

  /** Every error seen, kept or not. */
  get total(): number {
    return this.#total;
  }

  /** Errors counted but not kept. */
  get omitted(): number {
    return this.#total - this.#kept.length;
  }

  get hasErrors(): boolean {
    return this.#total > 0;
  }

  /** One sentence per kept error (`line 3: ...`), plus `... and N more invalid rows` when some were dropped. */
  messages(): string[] {
    const lines = this.#kept.map((e) => `line ${e.line}: ${e.message}`);
    if (this.omitted > 0) lines.push(`... and ${this.omitted} more invalid ${this.omitted === 1 ? 'row' : 'rows'}`);
    return lines;
  }
}

/** Tracks ids for duplicate detection and hands out index-based ids to rows without one. */
export class IdRegistry {
  readonly #seen = new Map<string, number>();
  #index = 0;

  /** Call once per data record (valid or not) so auto ids match the record's position. */
  nextIndex(): number {
    this.#index += 1;
    return this.#index;
  }

  get count(): number {
    return this.#index;
  }

  /** Returns an error sentence when `id` was already used, else records it. */
  claim(id: string, line: number): string | null {
    const previous = this.#seen.get(id);
    if (previous !== undefined) return `duplicate id '${truncate(id)}': also used on line ${previous}`;
    this.#seen.set(id, line);
    return null;
  }
}

/** The row id: a given string or integer, or the row's 1-based index when absent; null when unusable. */
export function normaliseId(value: unknown, index: number): string | null {
  if (value === undefined || value === null) return String(index);
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : null;
  if (typeof value !== 'string' || value === '' || value.length > MAX_ID_LENGTH) return null;
  return value;
}

/** Defines an own property, so a key named `__proto__` is data rather than a prototype change. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `null`, `an array`, `a string`, ... for error sentences. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Shortens user text quoted in an error sentence. */
export function truncate(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * What the input guard finds wrong with a row (nesting over MAX_JSON_DEPTH, NUL, a lone surrogate, a
 * number JSON cannot round-trip), as a sentence naming the field (`row.vars.q: ...`), or null.
 */
export function rowProblem(value: unknown): string | null {
  try {
    checkInput('row', value);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
