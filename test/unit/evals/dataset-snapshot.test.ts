import { createHash } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../../../src/evals/dataset-parser.ts';
import {
  canonicalJson,
  canonicalRowLine,
  computeSnapshotId,
  isSnapshotId,
  snapshotDataset,
  writeCanonicalSnapshot,
} from '../../../src/evals/dataset-snapshot.ts';

async function* from(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text, 'utf8');
}

/** A writable that keeps what it receives. */
function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('canonicalJson', () => {
  it('sorts keys recursively and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: 'é' }], c: true } })).toBe('{"a":{"c":true,"d":[3,{"y":"é","z":null}]},"b":1}');
  });

  it('omits undefined members like JSON, and refuses values JSON would distort', () => {
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/\$\.n is not a finite number/);
    expect(() => canonicalJson(10n)).toThrow(/bigint/);
  });
});

describe('snapshot ids', () => {
  const jsonl = [
    '{"id":"1","vars":{"question":"2+2","lang":"en"},"expected":"4"}',
    '{"expected":"Paris","vars":{"lang":"fr","question":"capital"},"id":"2","metadata":{"tag":"geo"}}',
  ].join('\n');
  const jsonlOtherOrder = [
    '{ "vars": { "lang": "en", "question": "2+2" }, "expected": "4", "id": "1" }',
    '',
    '{"id":"2","metadata":{"tag":"geo"},"vars":{"question":"capital","lang":"fr"},"expected":"Paris"}',
    '',
  ].join('\r\n');
  const flat = ['{"id":"1","question":"2+2","lang":"en","expected":"4"}', '{"id":"2","question":"capital","lang":"fr","expected":"Paris","metadata":{"tag":"geo"}}'].join('\n');
  const csv = 'lang,id,vars.question,expected,metadata\nen,1,2+2,4,\nfr,2,capital,Paris,"{""tag"": ""geo""}"\n';

  async function idOf(text: string, format: 'jsonl' | 'csv') {
    const out = sink();
    const result = await snapshotDataset(from(text), { format }, out.stream);
    expect(result.errors).toEqual([]);
    return { ...result, text: out.text() };
  }

  it('gives the same id for the same rows in JSONL, re-ordered JSONL, flat JSONL and CSV', async () => {
    const a = await idOf(jsonl, 'jsonl');
    const b = await idOf(jsonlOtherOrder, 'jsonl');
    const c = await idOf(flat, 'jsonl');
    const d = await idOf(csv, 'csv');
    expect(isSnapshotId(a.snapshotId)).toBe(true);
    expect(new Set([a.snapshotId, b.snapshotId, c.snapshotId, d.snapshotId]).size).toBe(1);
    expect(a.rowCount).toBe(2);
    expect(a.text).toBe(
      '{"expected":"4","id":"1","vars":{"lang":"en","question":"2+2"}}\n' +
        '{"expected":"Paris","id":"2","metadata":{"tag":"geo"},"vars":{"lang":"fr","question":"capital"}}\n',
    );
    expect(d.text).toBe(a.text);
    // The id is the SHA-256 of exactly the bytes written.
    expect(a.snapshotId).toBe(`sha256:${createHash('sha256').update(a.text).digest('hex')}`);
    expect(a.byteCount).toBe(Buffer.byteLength(a.text));
  });

  it('changes when any value changes', async () => {
    const a = await idOf(jsonl, 'jsonl');
    const b = await idOf(jsonl.replace('"4"', '"5"'), 'jsonl');
    expect(b.snapshotId).not.toBe(a.snapshotId);
  });

  it('computeSnapshotId agrees with the streamed writer', async () => {
    const a = await idOf(jsonl, 'jsonl');
    const rows = parseDataset(from(jsonl), { format: 'jsonl' }).rows;
    expect(await computeSnapshotId(rows)).toBe(a.snapshotId);
  });

  it('reading the snapshot file back gives the same id (it is itself valid JSONL)', async () => {
    const a = await idOf(csv, 'csv');
    const again = await idOf(a.text, 'jsonl');
    expect(again.snapshotId).toBe(a.snapshotId);
    expect(again.text).toBe(a.text);
  });
});

describe('writeCanonicalSnapshot', () => {
  it('returns the row errors and stops writing after the first one', async () => {
    const out = sink();
    const parsed = parseDataset(from('{"id":"a"}\n{"id":"b"}\nnot json\n{"id":"c"}\n{"id":"a"}\n'), { format: 'jsonl' });
    const result = await writeCanonicalSnapshot(parsed, out.stream);
    expect(result.errors).toEqual([expect.stringMatching(/^line 3: invalid JSON/), "line 5: duplicate id 'a': also used on line 1"]);
    expect(result.rowErrors.map((e) => e.line)).toEqual([3, 5]);
    expect(out.text()).toBe('{"id":"a","vars":{}}\n{"id":"b","vars":{}}\n');
  });

  it('respects backpressure of a slow writable and ends it', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `{"id":"${i}","vars":{"t":"${'z'.repeat(200)}"}}`).join('\n');
    const slow = new PassThrough({ highWaterMark: 1024 });
    let received = 0;
    const drained = (async () => {
      for await (const chunk of slow) {
        received += (chunk as Buffer).length;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const result = await snapshotDataset(from(rows), { format: 'jsonl' }, slow);
    await drained;
    expect(result.rowCount).toBe(2000);
    expect(received).toBe(result.byteCount);
    expect(slow.writableEnded).toBe(true);
  });

  it('rejects when the output fails instead of hanging', async () => {
    const failing = new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, done) {
        done(new Error('ENOSPC: no space left'));
      },
    });
    const rows = Array.from({ length: 100 }, (_, i) => `{"id":"${i}"}`).join('\n');
    await expect(snapshotDataset(from(rows), { format: 'jsonl' }, failing)).rejects.toThrow(/ENOSPC/);
  });

  it('canonicalRowLine omits absent expected and metadata but keeps null', () => {
    expect(canonicalRowLine({ id: '1', vars: {} })).toBe('{"id":"1","vars":{}}\n');
    expect(canonicalRowLine({ id: '1', vars: {}, expected: null })).toBe('{"expected":null,"id":"1","vars":{}}\n');
  });
});
