import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, textPrompt, uploadDataset } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * One input guard for every way data comes in: JSON bodies, dataset rows (JSONL and CSV, streamed),
 * query strings. What it refuses is a 4xx naming the field or line, and nothing is stored.
 */

let db: TestDatabase;
let server: TestServer;
let url: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  url = server.url;
  expect((await request(url, 'POST', '/v1/prompts', textPrompt('guard'))).status).toBe(201);
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

const datasetFiles = () => readdirSync(path.join(db.dataDir, 'datasets'));
const count = async (table: 'evaluation_runs' | 'dataset_snapshots' | 'jobs') =>
  Number((await server.database.db.selectFrom(table).select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

/** Uploads `body` and expects a 400 whose message matches `message`, with nothing stored. */
async function refusedUpload(body: string | Uint8Array, type: string, message: RegExp): Promise<void> {
  const [files, rows] = [datasetFiles(), await count('dataset_snapshots')];
  const res = await uploadDataset(url, body as string, type);
  expect(res.status, res.text.slice(0, 500)).toBe(400);
  expect(res.body.error.message).toMatch(message);
  expect(datasetFiles()).toEqual(files);
  expect(await count('dataset_snapshots')).toBe(rows);
}

const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('regex scorers on a linear-time engine', () => {
  it('answers 422 UNPROCESSABLE naming the feature for a pattern RE2 cannot run, and creates no run', async () => {
    const snapshot = (await uploadDataset(url, '{"id":"1","vars":{"text":"a"}}\n')).body.data_snapshot_id;
    const runs = await count('evaluation_runs');
    for (const [pattern, feature] of [['(a)\\1', 'backreferences'], ['^(?=a)a', 'lookahead']]) {
      const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'guard@1', data_snapshot_id: snapshot, provider: 'echo', scorers: [{ name: 'r', type: 'regex', pattern }] });
      expect(res.status, res.text).toBe(422);
      expect(res.body.error.code).toBe('UNPROCESSABLE');
      expect(res.body.error.message).toContain('scorers.0.pattern');
      expect(res.body.error.message).toContain(feature);
    }
    expect(await count('evaluation_runs')).toBe(runs);
  });
});

describe('dataset rows go through the input guard', () => {
  it('refuses rows nested 3,000 and 100,000 levels deep with a 400 naming the line (stored, or a 500 from a stack overflow)', async () => {
    await refusedUpload(`{"id":"ok","vars":{"q":1}}\n{"id":"deep","vars":${nested(3000)}}\n`, 'application/x-ndjson', /line 2: .*nested at least 65 levels deep, over the limit of 64/);
    await refusedUpload(`{"id":"deep","vars":${nested(100_000)}}\n`, 'application/x-ndjson', /line 1: .*over the limit of 64/);
  });

  it('refuses a row nested 100 levels deep, over the limit of 64 (it was stored)', async () => {
    await refusedUpload(`{"id":"deep","vars":${nested(100)}}\n`, 'application/x-ndjson', /line 1: .*over the limit of 64/);
    await refusedUpload(`id,metadata\n1,"${nested(100).replace(/"/g, '""')}"\n`, 'text/csv', /line 2: .*over the limit of 64/);
  });

  it('refuses NUL and lone surrogates in JSONL escapes and CSV cells, naming the line and field (they were stored)', async () => {
    await refusedUpload('{"id":"1","vars":{"q":"a\\u0000b"}}\n', 'application/x-ndjson', /line 1: row\.vars\.q: contains a NUL character/);
    await refusedUpload('{"id":"1","vars":{"q":"\\ud800"}}\n', 'application/x-ndjson', /line 1: row\.vars\.q: contains an unpaired UTF-16 surrogate/);
    await refusedUpload('{"id":"1","expected":"x\\udc00"}\n', 'application/x-ndjson', /line 1: row\.expected: contains an unpaired/);
    await refusedUpload('id,q\n1,a\u0000b\n', 'text/csv', /line 2: row\.vars\.q: contains a NUL character/);
  });
});

describe('invalid UTF-8 is refused, never stored as U+FFFD', () => {
  const bad = (text: string) => Buffer.concat([Buffer.from(text.slice(0, text.indexOf('#'))), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(text.indexOf('#') + 1))]);

  it('in a job payload (JSON body)', async () => {
    const jobs = await count('jobs');
    const res = await request(url, 'POST', '/v1/jobs', bad('{"type":"noop","payload":{"s":"#"}}'));
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toMatch(/body: .*not valid UTF-8/);
    expect(await count('jobs')).toBe(jobs);
  });

  it('in a JSONL and a CSV upload, and an encoded surrogate (ED A0 80) too', async () => {
    await refusedUpload(bad('{"id":"1","vars":{"q":"#"}}\n'), 'application/x-ndjson', /not valid UTF-8/);
    await refusedUpload(bad('id,q\n1,#\n'), 'text/csv', /not valid UTF-8/);
    await refusedUpload(Buffer.concat([Buffer.from('id,q\n1,'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\n')]), 'text/csv', /not valid UTF-8/);
  });

  it('accepts a character split across chunk boundaries, and refuses a sequence cut off at the end', async () => {
    const text = Buffer.from('{"id":"1","vars":{"q":"é😀"}}\n');
    const cut = text.indexOf(0xf0) + 2;
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(text.subarray(0, cut));
        controller.enqueue(text.subarray(cut));
        controller.close();
      },
    });
    const res = await fetch(`${url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body, duplex: 'half' } as RequestInit);
    expect(res.status).toBeLessThan(300);
    const rows = await (await fetch(`${url}/v1/datasets/${((await res.json()) as { data_snapshot_id: string }).data_snapshot_id}/rows`)).text();
    expect(JSON.parse(rows).vars.q).toBe('é😀');
    await refusedUpload(text.subarray(0, cut), 'application/x-ndjson', /not valid UTF-8/);
  });
});

describe('numbers JSON cannot round-trip are refused, naming the field', () => {
  it('in a job payload: -0, 1e400, an integer beyond 2^53 - 1', async () => {
    const jobs = await count('jobs');
    for (const [text, problem] of [
      ['{"type":"noop","payload":{"a":-0}}', /body\.payload\.a: -0/],
      ['{"type":"noop","payload":{"a":1e400}}', /body\.payload\.a: .*not a finite number/],
      ['{"type":"noop","payload":{"a":[1,9007199254740993]}}', /body\.payload\.a\.1: .*integer beyond/],
    ] as const) {
      const res = await request(url, 'POST', '/v1/jobs', text);
      expect(res.status, `${text} -> ${res.text}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION');
      expect(res.body.error.message).toMatch(problem);
    }
    expect(await count('jobs')).toBe(jobs);
  });

  it('in a dataset row', async () => {
    await refusedUpload('{"id":"1","vars":{"n":1e400}}\n', 'application/x-ndjson', /line 1: row\.vars\.n: .*not a finite number/);
    await refusedUpload('{"id":"1","expected":-0}\n', 'application/x-ndjson', /line 1: row\.expected: -0/);
    await refusedUpload('id,metadata\n1,"{""n"":-1e999}"\n', 'text/csv', /line 2: row\.metadata\.n: .*not a finite number/);
  });
});

describe('query strings', () => {
  it('refuses array-shaped and repeated parameters with a 400 naming them (status[] was ignored)', async () => {
    const shaped = await request(url, 'GET', '/v1/jobs?status[]=queued');
    expect(shaped.status, shaped.text).toBe(400);
    expect(shaped.body.error.message).toMatch(/querystring\.status\[\]: /);
    const repeated = await request(url, 'GET', '/v1/jobs?status=queued&status=failed');
    expect(repeated.status, repeated.text).toBe(400);
    expect(repeated.body.error.message).toMatch(/querystring\.status: given 2 times/);
    const nestedKey = await request(url, 'GET', '/v1/evaluations?status[a]=x');
    expect(nestedKey.status).toBe(400);
  });

  it('refuses percent-encoding that is not UTF-8 (it was passed on as the raw %FF)', async () => {
    for (const q of ['%FF', '%ED%A0%80', '%E2%82']) {
      const res = await request(url, 'GET', `/v1/evaluations/00000000-0000-0000-0000-000000000000/cases?q=${q}`);
      expect(res.status, `${q} -> ${res.text}`).toBe(400);
      expect(res.body.error.message).toMatch(/querystring\.q: .*not valid percent-encoded UTF-8/);
    }
  });
});

describe('an unwritable DATA_DIR', () => {
  it('answers a 5xx naming the path and the errno, with an error_id in the log, and leaves nothing half-written', async () => {
    const dir = path.join(db.dataDir, 'datasets');
    mkdirSync(dir, { recursive: true });
    const before = datasetFiles();
    // Root ignores permission bits: the immutable attribute refuses root too (EPERM); others get EACCES.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) execFileSync('chattr', ['+i', dir]);
    else execFileSync('chmod', ['0555', dir]);
    try {
      const res = await uploadDataset(url, '{"id":"1","vars":{"q":"unwritable"}}\n');
      expect(res.status, res.text).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
      expect(res.body.error.message).toMatch(asRoot ? /EPERM/ : /EACCES/);
      expect(res.body.error.message).toContain('DATA_DIR');
      expect(res.body.error.message).toContain('datasets');
      const logged = server.logs.filter((l) => l.error_id === res.body.error.error_id);
      expect(logged).toHaveLength(1);
      expect(JSON.stringify(logged[0])).toContain(dir);
    } finally {
      if (asRoot) execFileSync('chattr', ['-i', dir]);
      else execFileSync('chmod', ['0755', dir]);
    }
    expect(datasetFiles()).toEqual(before);
  });
});
