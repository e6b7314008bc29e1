import { readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTimeout } from '../../src/db/database.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Property tests over dataset uploads (JSONL and CSV) with adversarial rows: hostile strings (NUL,
 * lone surrogates, `__proto__`), numbers JSON cannot round-trip, deep nesting, invalid UTF-8 spliced
 * into the bytes. Properties: never a 5xx; an accepted upload reads back row for row equal to what
 * was sent; a refused one (4xx) stores no row and no file. EVALOPS_FUZZ_RUNS sets the runs (default 60).
 */

const RUNS = Number(process.env.EVALOPS_FUZZ_RUNS ?? 60);

let db: TestDatabase;
let server: TestServer;
const outcomes = new Map<number, number>();

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { RATE_LIMIT_READ_PER_MINUTE: '0', RATE_LIMIT_WRITE_PER_MINUTE: '0', DATASET_UPLOAD_LIMIT_BYTES: '2000000' });
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
  console.log(`dataset fuzz: statuses ${[...outcomes].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ')}`);
});

interface StoredRow {
  id: string;
  vars: Record<string, unknown>;
  expected?: unknown;
  metadata?: Record<string, unknown>;
}

const stored = async () => {
  const rows = await server.database.db.selectFrom('dataset_snapshots').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return `${Number(rows.n)} ${readdirSync(path.join(db.dataDir, 'datasets')).length}`;
};

/** Uploads; on 2xx reads the rows back and compares them with `expected`; on 4xx checks nothing was stored. */
async function check(body: Buffer, type: string, expected: StoredRow[] | null): Promise<void> {
  const before = await stored().catch(() => '0 0');
  const res = await withTimeout(
    fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': type }, body, signal: AbortSignal.timeout(15_000) }),
    15_000,
    'upload',
  );
  const text = await res.text();
  outcomes.set(res.status, (outcomes.get(res.status) ?? 0) + 1);
  const shown = `${type} ${body.toString('utf8').slice(0, 300)} -> ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, shown).toBeLessThan(500);
  // Nor is anything the guard allows refused.
  if (expected !== null) expect(res.status, `refused an admissible upload: ${shown}`).toBeLessThan(300);
  if (res.status >= 400) {
    expect(JSON.parse(text).error.message, shown).toEqual(expect.any(String));
    expect(await stored(), `refused but stored: ${shown}`).toBe(before);
    return;
  }
  // Bytes that are not UTF-8 must never be accepted.
  expect(expected, `accepted an upload that should have been refused: ${shown}`).not.toBeNull();
  const id = (JSON.parse(text) as { data_snapshot_id: string }).data_snapshot_id;
  const lines = (await (await fetch(`${server.url}/v1/datasets/${id}/rows`)).text()).split('\n').filter((l) => l !== '');
  expect(lines.map((l) => JSON.parse(l) as StoredRow), shown).toEqual(expected);
}

// ---- values --------------------------------------------------------------------------------

const hostileString = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udc00', '💥', '__proto__', 'constructor', '"quoted"', 'a,b', 'line\nbreak', 'cr\r\nlf', '\t', '\\', 'é'),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const hostileNumber = fc.oneof({ weight: 4, arbitrary: fc.integer() }, fc.constantFrom(0, -0, 1, -1, 0.5, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), Number.MAX_VALUE, 1e21, 5e-324), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    hostileNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;
/** Nested arrays `depth` deep: over 64 must be refused, whatever the depth. */
const deep = fc.integer({ min: 1, max: 3000 }).map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown);

// ---- JSONL -----------------------------------------------------------------------------------

const jsonlRow = fc.record(
  {
    id: fc.oneof(fc.nat({ max: 1000 }).map((n) => `r${n}`), fc.constant(undefined)),
    vars: fc.dictionary(hostileString, fc.oneof({ weight: 20, arbitrary: hostileJson }, { weight: 1, arbitrary: deep }), { maxKeys: 3 }),
    expected: fc.oneof(hostileJson, fc.constant(undefined)),
    metadata: fc.oneof(fc.dictionary(hostileString, hostileJson, { maxKeys: 3 }), fc.constant(undefined)),
  },
  { requiredKeys: ['vars'] },
);

/** What the service stores for these rows, or null when it must refuse them. */
type JsonlRow = { id?: string | undefined; vars: Record<string, unknown>; expected?: unknown; metadata?: Record<string, unknown> | undefined };

function jsonlExpectation(rows: JsonlRow[]): StoredRow[] | null {
  const ids = rows.map((r, i) => r.id ?? String(i + 1));
  if (new Set(ids).size !== ids.length) return null;
  return rows.map((r, i) => ({
    id: ids[i]!,
    vars: r.vars,
    ...(r.expected !== undefined ? { expected: r.expected } : {}),
    ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
  }));
}

/** Splices bytes that cannot be UTF-8 (a lone continuation byte, an overlong form, an encoded surrogate, 0xFF) into the text. */
const corruption = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom<readonly number[]>([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82])),
);

/** The string with each lone surrogate replaced by U+FFFD, as UTF-8 encoding does. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

function corrupt(text: string, [at, bytes]: readonly [number, readonly number[]]): Buffer {
  const raw = Buffer.from(text, 'utf8');
  const cut = Math.floor(at * raw.length);
  return Buffer.concat([raw.subarray(0, cut), Buffer.from(bytes), raw.subarray(cut)]);
}

describe('fuzzing dataset uploads', () => {
  it('JSONL: no 5xx; what is accepted reads back equal; what is refused stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(jsonlRow, { minLength: 1, maxLength: 6 }), corruption, async (rows, corruptAt) => {
        const lines = rows.map((r) => JSON.stringify(r));
        const text = `${lines.join('\n')}\n`;
        // What was sent is the JSON text (-0 is written 0): the expectation is built from it.
        const expected = corruptAt === null ? jsonlExpectation(lines.map((l) => JSON.parse(l) as JsonlRow)) : null;
        await check(corruptAt === null ? Buffer.from(text) : corrupt(text, corruptAt), 'application/x-ndjson', expected === null ? null : admissible(expected));
      }),
      { numRuns: RUNS },
    );
  }, Math.max(120_000, RUNS * 2000));

  it('CSV: no 5xx; what is accepted reads back equal (every cell a string); what is refused stores nothing', async () => {
    // The id, expected and metadata columns have rules of their own (tested in eval-api); here: vars.
    const name = fc
      .oneof(fc.constantFrom('q', 'answer', 'x', 'vars.x', ' spaced ', '__proto__', 'constructor', 'a,b', 'é', 'line\nbreak', 'nul\u0000'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }))
      .filter((n) => !['id', 'expected', 'metadata'].includes(wellFormed(n).trim()));
    const cell = fc.oneof(hostileString, fc.string({ unit: 'grapheme', maxLength: 30 }));
    const table = fc.uniqueArray(name, { minLength: 1, maxLength: 4 }).chain((names) =>
      fc.record({ names: fc.constant(names), withId: fc.boolean(), rows: fc.array(fc.array(cell, { minLength: names.length, maxLength: names.length }), { minLength: 1, maxLength: 5 }) }),
    );
    await fc.assert(
      fc.asyncProperty(table, corruption, async ({ names, withId, rows }, corruptAt) => {
        const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
        const header = [...(withId ? ['id'] : []), ...names];
        const lines = [header, ...rows.map((r, i) => [...(withId ? [`r${i}`] : []), ...r])].map((cells) => cells.map((c) => quote(wellFormed(c))).join(','));
        const text = `${lines.join('\n')}\n`;
        await check(corruptAt === null ? Buffer.from(text) : corrupt(text, corruptAt), 'text/csv', corruptAt === null ? csvExpectation(names, withId, rows) : null);
      }),
      { numRuns: RUNS },
    );
  }, Math.max(120_000, RUNS * 2000));
});

/**
 * The rows as the guard lets them through, or null when it must refuse them: no NUL, no lone
 * surrogate, no -0, no non-finite number, no integer beyond 2^53 - 1, nesting within 64 levels.
 */
function admissible(rows: StoredRow[]): StoredRow[] | null {
  const ok = (value: unknown, depth: number): boolean => {
    if (typeof value === 'string') return !/\u0000/.test(value) && wellFormed(value) === value;
    if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) && (!Number.isInteger(value) || Number.isSafeInteger(value));
    if (value === null || typeof value !== 'object') return true;
    if (depth > 64) return false;
    return Object.entries(value).every(([k, v]) => ok(k, depth) && ok(v, depth + 1));
  };
  // The row as uploaded is one level above vars, expected and metadata.
  return rows.every((r) => ok({ id: r.id, vars: r.vars, expected: r.expected, metadata: r.metadata }, 1)) ? rows : null;
}

function csvExpectation(names: string[], withId: boolean, rows: string[][]): StoredRow[] | null {
  const targets = names.map((n) => {
    const trimmed = wellFormed(n).trim();
    return trimmed === 'id' || trimmed === 'expected' || trimmed === 'metadata' ? null : trimmed.startsWith('vars.') ? trimmed.slice(5) : trimmed;
  });
  if (targets.some((t) => t === null || t === '') || new Set(targets).size !== targets.length) return null;
  const out = rows.map((cells, i) => ({ id: withId ? `r${i}` : String(i + 1), vars: Object.fromEntries(targets.map((t, j) => [t!, wellFormed(cells[j]!)])) }));
  return admissible(out);
}
