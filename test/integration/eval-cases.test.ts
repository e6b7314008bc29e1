import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// Pages of a run's cases (GET /v1/evaluations/:id/cases), dataset previews (GET /v1/datasets/:id/rows
// with offset/limit) and the outputs of flipped cases in a comparison.

const CASES = 1200;
/** Case i: errors (HTTP 400) when i % 50 == 0; model base answers wrongly when i % 10 == 0, model head when i % 7 == 0. */
const errors = (i: number) => i % 50 === 0;
const baseWrong = (i: number) => i % 10 === 0;
const headWrong = (i: number) => i % 7 === 0;
/** Every 250th case holds quotes and a backslash, to search for. */
const textOf = (i: number) => (i % 250 === 1 ? `case ${i} "quoted" a\\b` : `case ${i}`);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);
const ids = (body: any) => body.cases.map((c: any) => c.id);
const cid = (i: number) => `c${i}`;

let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let url: string;
let snapshot: string;
let base: any;
let head: any;

beforeAll(async () => {
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({
    reply: ({ model, messages }) => {
      const text = messages.at(-1)!.content;
      const i = Number(/^case (\d+)/.exec(text)?.[1]);
      if (errors(i)) return { status: 400, body: { error: { message: `case ${i} is refused` } } };
      if ((model === 'base' && baseWrong(i)) || (model === 'head' && headWrong(i))) return `wrong answer from ${model}`;
      return undefined;
    },
  });
  server = await startTestServer(db);
  url = server.url;
  const rows = range(1, CASES).map((i) => JSON.stringify({ id: cid(i), vars: { text: textOf(i) }, expected: `echo: ${textOf(i)}` }));
  snapshot = (await uploadDataset(url, `${rows.join('\n')}\n`)).body.data_snapshot_id;
  await request(url, 'POST', '/v1/prompts', { name: 'pages', messages: [{ role: 'user', content: '{{text}}' }] });
  const submit = async (model: string) => {
    const res = await request(url, 'POST', '/v1/evaluations', {
      prompt_version: 'pages@1',
      data_snapshot_id: snapshot,
      provider: { type: 'openai', base_url: openai.url, backoff_base_ms: 20 },
      model,
      concurrency: 16,
      scorers: [{ name: 'exact', type: 'exact' }],
    });
    expect(res.status, res.text).toBe(202);
    return res.body.run_id as string;
  };
  const [baseId, headId] = [await submit('base'), await submit('head')];
  base = await waitForRun(url, baseId, 50_000);
  head = await waitForRun(url, headId, 50_000);
  expect(base.status, base.error_message).toBe('succeeded');
  expect(head.status, head.error_message).toBe('succeeded');
});

afterAll(async () => {
  await server?.close(2000);
  await openai?.close();
  await db?.cleanup();
});

describe('GET /v1/evaluations/:id/cases', () => {
  const failing = range(1, CASES).filter((i) => !errors(i) && baseWrong(i));
  const erroring = range(1, CASES).filter(errors);

  it('pages through the cases in dataset order with the total, at any depth', async () => {
    const first = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases`);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ total: CASES, matched: CASES, offset: 0, limit: 50 });
    expect(ids(first.body)).toEqual(range(1, 50).map(cid));
    expect(first.body.cases[0]).toEqual({
      index: 0,
      id: 'c1',
      vars: { text: textOf(1) },
      expected: `echo: ${textOf(1)}`,
      output: `echo: ${textOf(1)}`,
      pass: true,
      scores: { exact: expect.objectContaining({ score: 1, pass: true }) },
      latency_ms: expect.any(Number),
      tokens: expect.any(Object),
      error: null,
    });
    const deep = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?offset=1150&limit=50`);
    expect(ids(deep.body)).toEqual(range(1151, 1200).map(cid));
    expect(deep.body.cases.map((c: any) => c.index)).toEqual(range(1150, 1199));
    const tail = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?offset=1190&limit=500`);
    expect(ids(tail.body)).toEqual(range(1191, 1200).map(cid));
    const past = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?offset=5000`);
    expect(past.body).toMatchObject({ total: CASES, matched: CASES, cases: [] });
  });

  it('gives the same lines as the results stream', async () => {
    const page = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?offset=700&limit=40`);
    const stream = await request(url, 'GET', `/v1/evaluations/${base.run_id}/results?offset=700&limit=40`);
    const lines = stream.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(page.body.cases.map(({ index: _index, ...rest }: any) => rest)).toEqual(lines);
    const file = readFileSync(path.join(base.run_dir, 'results.jsonl'), 'utf8').trim().split('\n');
    expect(JSON.parse(file[700]!)).toEqual(lines[0]);
  });

  it('filters by outcome: fail (answered, a scorer failed), error (no answer), several at once', async () => {
    const fail = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?status=fail&limit=500`);
    expect(fail.body).toMatchObject({ total: CASES, matched: failing.length });
    expect(ids(fail.body)).toEqual(failing.map(cid));
    expect(fail.body.cases.every((c: any) => c.pass === false && c.error === null)).toBe(true);
    const error = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?status=error&offset=20`);
    expect(error.body.matched).toBe(erroring.length);
    expect(ids(error.body)).toEqual(erroring.slice(20).map(cid));
    expect(error.body.cases[0].error).toMatch(/HTTP 400.*case 1050 is refused/);
    const both = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?status=fail,error&offset=100&limit=20`);
    const notPassing = range(1, CASES).filter((i) => errors(i) || baseWrong(i));
    expect(both.body.matched).toBe(notPassing.length);
    expect(ids(both.body)).toEqual(notPassing.slice(100, 120).map(cid));
    const pass = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?status=pass&offset=900&limit=3`);
    expect(pass.body.matched).toBe(CASES - notPassing.length);
    const passing = range(1, CASES).filter((i) => !errors(i) && !baseWrong(i));
    expect(ids(pass.body)).toEqual(passing.slice(900, 903).map(cid));
  });

  it('searches case-insensitively in id, vars, expected, output and error, with exact counts and paging', async () => {
    const expected77 = [77, ...range(770, 779)];
    const search = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=CASE%2077&limit=5`);
    expect(search.body).toMatchObject({ total: CASES, matched: expected77.length });
    expect(ids(search.body)).toEqual(expected77.slice(0, 5).map(cid));
    const next = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=case%2077&limit=5&offset=5`);
    expect(ids(next.body)).toEqual(expected77.slice(5, 10).map(cid));
    const failingOnly = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=case%2077&status=fail`);
    expect(ids(failingOnly.body)).toEqual(['c770']);
    const byId = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=c1199`);
    expect(ids(byId.body)).toEqual(['c1199']);
    const byError = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=${encodeURIComponent('is refused')}`);
    expect(byError.body.matched).toBe(erroring.length);
    const quoted = await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=${encodeURIComponent('"QUOTED" a\\b')}`);
    expect(ids(quoted.body)).toEqual([1, 251, 501, 751, 1001].map(cid));
    // Key names and scorer reasons are not searched.
    for (const q of ['vars', 'expected', 'exact', 'latency']) {
      expect((await request(url, 'GET', `/v1/evaluations/${base.run_id}/cases?q=${q}`)).body.matched, q).toBe(0);
    }
  });

  it('refuses bad input with a 4xx naming the problem', async () => {
    const cases = (query: string) => request(url, 'GET', `/v1/evaluations/${base.run_id}/cases${query}`);
    const badStatus = await cases('?status=pass,maybe');
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.message).toMatch(/status: "maybe" is not a case status; use pass, fail, error/);
    for (const [query, field] of [['?limit=0', 'limit'], ['?limit=501', 'limit'], ['?offset=-1', 'offset'], ['?offset=x', 'offset'], [`?q=${'x'.repeat(201)}`, 'q']]) {
      const res = await cases(query!);
      expect(res.status, query).toBe(400);
      expect(res.body.error.message, query).toMatch(new RegExp(`\\b${field}\\b`));
    }
    expect((await request(url, 'GET', '/v1/evaluations/not-a-run/cases')).status).toBe(400);
    const unknown = await request(url, 'GET', '/v1/evaluations/00000000-0000-4000-8000-000000000000/cases');
    expect(unknown.status).toBe(404);
  });

  it('answers 409 for a run that has not finished, saying why', async () => {
    const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'pages@1', data_snapshot_id: snapshot, provider: { type: 'echo', delay_ms: 200 }, concurrency: 1 });
    await waitForRun(url, res.body.run_id, 20_000, ['running']);
    const early = await request(url, 'GET', `/v1/evaluations/${res.body.run_id}/cases`);
    expect(early.status).toBe(409);
    expect(early.body.error.message).toMatch(/has no results\.jsonl yet: it is written when the run finishes/);
    await request(url, 'POST', `/v1/evaluations/${res.body.run_id}/cancel`);
    expect((await waitForRun(url, res.body.run_id)).status).toBe('cancelled');
  });
});

describe('GET /v1/datasets/:id/rows with offset and limit', () => {
  it('sends only the rows asked for, as stored', async () => {
    const stored = readFileSync(path.join(db.dataDir, 'datasets', `${snapshot.slice(7)}.jsonl`), 'utf8');
    const lines = stored.split('\n').filter(Boolean);
    const first = await request(url, 'GET', `/v1/datasets/${snapshot}/rows?limit=3`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(first.text).toBe(`${lines.slice(0, 3).join('\n')}\n`);
    const last = await request(url, 'GET', `/v1/datasets/${snapshot}/rows?offset=1198&limit=5`);
    expect(last.text).toBe(`${lines.slice(1198).join('\n')}\n`);
    expect((await request(url, 'GET', `/v1/datasets/${snapshot}/rows?offset=5000`)).text).toBe('');
    expect((await request(url, 'GET', `/v1/datasets/${snapshot}/rows`)).text).toBe(stored);
    for (const [query, field] of [['?limit=0', 'limit'], ['?limit=10001', 'limit'], ['?offset=-2', 'offset'], ['?limit=ten', 'limit']]) {
      const res = await request(url, 'GET', `/v1/datasets/${snapshot}/rows${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.message, query).toMatch(new RegExp(`\\b${field}\\b`));
    }
  });
});

describe('GET /v1/evaluations/compare: the flipped cases side by side', () => {
  const answered = range(1, CASES).filter((i) => !errors(i));
  const regressions = answered.filter((i) => headWrong(i) && !baseWrong(i));
  const fixes = answered.filter((i) => baseWrong(i) && !headWrong(i));

  it('gives both outputs, the inputs and the expected answer of each flipped case, regressions first', async () => {
    const res = await request(url, 'GET', `/v1/evaluations/compare?base=${base.run_id}&head=${head.run_id}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ same_dataset: true, pairedCases: CASES, flippedTotal: regressions.length + fixes.length });
    expect(res.body.flipped.map((f: any) => f.id)).toEqual([...regressions, ...fixes].map(cid));
    const regression = res.body.flipped[0];
    expect(regression).toEqual({
      id: cid(regressions[0]!),
      scorer: 'exact',
      from: 'pass',
      to: 'fail',
      baseScore: 1,
      headScore: 0,
      vars: { text: textOf(regressions[0]!) },
      expected: `echo: ${textOf(regressions[0]!)}`,
      base: { output: `echo: ${textOf(regressions[0]!)}`, error: null },
      head: { output: 'wrong answer from head', error: null },
      truncated: false,
    });
    const fix = res.body.flipped.find((f: any) => f.from === 'fail');
    expect(fix).toMatchObject({ id: cid(fixes[0]!), base: { output: 'wrong answer from base' }, head: { output: `echo: ${textOf(fixes[0]!)}` } });
    const mcnemar = res.body.scorers[0].mcnemar;
    expect(mcnemar).toMatchObject({ passToFail: regressions.length, failToPass: fixes.length });
  });

  it('leaves the texts out with outputs=false and keeps max_flipped', async () => {
    const res = await request(url, 'GET', `/v1/evaluations/compare?base=${base.run_id}&head=${head.run_id}&outputs=false&max_flipped=3`);
    expect(res.body.flipped).toHaveLength(3);
    expect(Object.keys(res.body.flipped[0]).sort()).toEqual(['baseScore', 'from', 'headScore', 'id', 'scorer', 'to']);
    const bad = await request(url, 'GET', `/v1/evaluations/compare?base=${base.run_id}&head=${head.run_id}&outputs=yes`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/outputs/);
  });
});
