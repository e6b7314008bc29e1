import { describe, expect, it } from 'vitest';
import { datasetFormatFromFilename, parseDataset, type DatasetRow, type DatasetSource } from '../../../src/evals/dataset-parser.ts';

/** Feeds text in small chunks, split mid-line and mid-character, as a network upload would. */
async function* chunked(text: string, size = 7): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(source: DatasetSource, format: 'jsonl' | 'csv', maxErrors?: number) {
  const parsed = parseDataset(source, { format, maxErrors });
  const rows: DatasetRow[] = [];
  for await (const row of parsed.rows) rows.push(row);
  return { rows, errors: parsed.errors.messages(), collector: parsed.errors };
}

describe('JSONL parsing', () => {
  it('parses rows, skips blank lines, assigns index ids and maps flat keys to vars', async () => {
    const text = [
      '{"id":"a","vars":{"q":"héllo"},"expected":"x","metadata":{"src":"t"}}',
      '',
      '   ',
      '{"vars":{"q":"two"}}',
      '{"question":"flat","expected":3}',
      '{"id":7,"vars":{}}\r',
    ].join('\n');
    const { rows, errors } = await collect(chunked(text), 'jsonl');
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      { id: 'a', vars: { q: 'héllo' }, expected: 'x', metadata: { src: 't' } },
      { id: '2', vars: { q: 'two' } },
      { id: '3', vars: { question: 'flat' }, expected: 3 },
      { id: '7', vars: {} },
    ]);
  });

  it('reports bad lines with 1-based line numbers and keeps going', async () => {
    const text = [
      '{"id":"a","vars":{}}', // 1
      '{"id":"b",', // 2 invalid JSON
      '[1,2]', // 3 not an object
      '', // 4
      '{"id":"a","vars":{}}', // 5 duplicate
      '{"vars":"nope"}', // 6
      '{"id":true}', // 7
      '{"q":1,"vars":{"q":2}}', // 8 clash
      '{"id":"ok","metadata":[1]}', // 9
      '{"id":"fine","vars":{"x":1}}', // 10
    ].join('\n');
    const { rows, errors } = await collect(chunked(text, 3), 'jsonl');
    expect(rows.map((r) => r.id)).toEqual(['a', 'fine']);
    expect(errors).toHaveLength(7);
    expect(errors[0]).toMatch(/^line 2: invalid JSON \(/);
    expect(errors[1]).toBe('line 3: a row must be a JSON object, got an array');
    expect(errors[2]).toBe("line 5: duplicate id 'a': also used on line 1");
    expect(errors[3]).toBe('line 6: vars must be a JSON object, got a string');
    expect(errors[4]).toMatch(/^line 7: id must be a non-empty string/);
    expect(errors[5]).toBe("line 8: 'q' is given both at the top level and in vars");
    expect(errors[6]).toBe('line 9: metadata must be a JSON object, got an array');
  });

  it('stops keeping errors after the cap and says how many more there were', async () => {
    const text = Array.from({ length: 25 }, () => 'not json').join('\n');
    const { errors, collector } = await collect(chunked(text, 50), 'jsonl');
    expect(collector.total).toBe(25);
    expect(errors).toHaveLength(21);
    expect(errors[19]).toMatch(/^line 20: /);
    expect(errors[20]).toBe('... and 5 more invalid rows');
  });

  it('reports an empty file', async () => {
    const { errors } = await collect(chunked('\n\n'), 'jsonl');
    expect(errors).toEqual(['line 1: the file has no rows']);
  });

  it('rejects a line longer than the limit without holding it', async () => {
    const parsed = parseDataset(chunked(`{"x":"${'a'.repeat(500)}"}\n{"x":1}\n`, 64), { format: 'jsonl', maxRowChars: 100 });
    const rows: DatasetRow[] = [];
    for await (const row of parsed.rows) rows.push(row);
    expect(rows).toEqual([{ id: '2', vars: { x: 1 } }]);
    expect(parsed.errors.messages()).toEqual(['line 1: the line is longer than 100 characters']);
  });

  it('keeps a key named __proto__ as data', async () => {
    const { rows } = await collect(chunked('{"__proto__":{"polluted":true}}'), 'jsonl');
    expect(Object.keys(rows[0]?.vars ?? {})).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('CSV parsing', () => {
  it('maps id, expected, metadata, vars.x and other columns', async () => {
    const text = '\uFEFFid,vars.question,context,expected,metadata\r\nq1,"What, exactly?",ctx,42,"{""k"":1}"\r\n,plain,,,\r\n';
    const { rows, errors } = await collect(chunked(text, 5), 'csv');
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      { id: 'q1', vars: { question: 'What, exactly?', context: 'ctx' }, expected: '42', metadata: { k: 1 } },
      { id: '2', vars: { question: 'plain', context: '' } },
    ]);
  });

  it('reports bad rows with the line where the record starts', async () => {
    const text = [
      'id,q,metadata', // 1
      'a,"two', // 2  (quoted field spans lines 2-3)
      'lines",', // 3
      'b,x', // 4: too few fields
      '', // 5
      'c,y,{bad', // 6: metadata not JSON
      'a,z,', // 7: duplicate id
      'd,w,[1]', // 8: metadata not an object
      'e,v,', // 9
    ].join('\n');
    const { rows, errors } = await collect(chunked(text, 4), 'csv');
    expect(rows.map((r) => r.id)).toEqual(['a', 'e']);
    expect(rows[0]?.vars.q).toBe('two\nlines');
    expect(errors).toEqual([
      'line 4: the row has 2 fields, the header has 3',
      expect.stringMatching(/^line 6: metadata is not valid JSON \(/),
      "line 7: duplicate id 'a': also used on line 2",
      'line 8: metadata must be a JSON object, got an array',
    ]);
  });

  it('rejects a bad header', async () => {
    expect((await collect(chunked('q,vars.q\n1,2\n'), 'csv')).errors).toEqual([
      "line 1: header columns 'q' and 'vars.q' map to the same field",
    ]);
    expect((await collect(chunked('a,,b\n1,2,3\n'), 'csv')).errors).toEqual(['line 1: header column 2 has an empty name']);
  });

  it('reports an unclosed quote as a syntax error and stops', async () => {
    const { errors } = await collect(chunked('id,q\n1,ok\n2,"never closed\n'), 'csv');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^line \d+: CSV syntax error: Quote Not Closed/);
  });

  it('reports header-only and empty files', async () => {
    expect((await collect(chunked('id,q\n'), 'csv')).errors).toEqual(['line 1: the CSV file has a header but no rows']);
    expect((await collect(chunked(''), 'csv')).errors).toEqual([
      'line 1: the file is empty: a CSV dataset needs a header row and at least one row',
    ]);
  });

  it('propagates source I/O errors instead of blaming the file', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('id,q\n1,a\n');
      throw new Error('disk on fire');
    }
    await expect(collect(failing(), 'csv')).rejects.toThrow('disk on fire');
    await expect(collect(failing(), 'jsonl')).rejects.toThrow('disk on fire');
  });
});

describe('streaming', () => {
  it('parses a 100k-row stream produced on demand, with bounded buffering', async () => {
    const total = 100_000;
    let produced = 0;
    let maxAhead = 0;
    let consumed = 0;
    async function* generate(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < total; i += 1) {
        produced += 1;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield Buffer.from(`{"id":"r${i}","vars":{"text":"row number ${i} ${'x'.repeat(100)}"},"expected":"${i}"}\n`);
      }
    }
    const parsed = parseDataset(generate(), { format: 'jsonl' });
    let last: DatasetRow | undefined;
    for await (const row of parsed.rows) {
      consumed += 1;
      last = row;
    }
    expect(consumed).toBe(total);
    expect(last?.id).toBe(`r${total - 1}`);
    expect(parsed.errors.hasErrors).toBe(false);
    // The source is pulled only as rows are consumed: the parser never reads far ahead.
    expect(maxAhead).toBeLessThanOrEqual(2);
  });

  it('streams CSV with backpressure (the parser does not read the whole source first)', async () => {
    const total = 100_000;
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    async function* generate(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('id,text\n');
      for (let i = 0; i < total; i += 1) {
        produced += 1;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield Buffer.from(`r${i},"row ${i} ${'y'.repeat(100)}"\n`);
      }
    }
    const parsed = parseDataset(generate(), { format: 'csv' });
    for await (const _row of parsed.rows) consumed += 1;
    expect(consumed).toBe(total);
    expect(parsed.errors.hasErrors).toBe(false);
    // Stream buffers (highWaterMark) allow some read-ahead, but nowhere near the whole file.
    expect(maxAhead).toBeLessThan(total / 10);
  });
});

describe('datasetFormatFromFilename', () => {
  it('maps extensions', () => {
    expect(datasetFormatFromFilename('a.JSONL')).toBe('jsonl');
    expect(datasetFormatFromFilename('a.ndjson')).toBe('jsonl');
    expect(datasetFormatFromFilename('a.csv')).toBe('csv');
    expect(datasetFormatFromFilename('a.txt')).toBeNull();
  });
});
