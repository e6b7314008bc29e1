import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_METADATA_SCHEMA, validateRunMetadata } from '../../src/evals/run-metadata.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The key the provider reads from the environment; it must never reach a file, a row or a log line.
const KEY_VAR = 'EVAL_TEST_API_KEY';
const SECRET = 'sk-test-eval-api-3f9a61c2d8e4b7a0';

let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let url: string;

beforeAll(async () => {
  process.env[KEY_VAR] = SECRET;
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({ apiKey: SECRET, latencyMs: 2 });
  server = await startTestServer(db, { COMMIT_SHA: 'abcdef0123456789', DATASET_UPLOAD_LIMIT_BYTES: '20000' });
  url = server.url;
});

afterAll(async () => {
  await server?.close(2000);
  await openai?.close();
  await db?.cleanup();
  delete process.env[KEY_VAR];
});

const openaiProvider = () => ({ type: 'openai', base_url: openai.url, api_key_env: KEY_VAR, backoff_base_ms: 50 });
const datasetFiles = () => readdirSync(path.join(db.dataDir, 'datasets'));

async function pushPrompt(body: unknown): Promise<string> {
  const res = await request(url, 'POST', '/v1/prompts', body);
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res.body.prompt_version;
}

async function upload(text: string, type?: string): Promise<string> {
  const res = await uploadDataset(url, text, type);
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res.body.data_snapshot_id;
}

async function run(body: Record<string, unknown>): Promise<any> {
  const res = await request(url, 'POST', '/v1/evaluations', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForRun(url, res.body.run_id);
}

describe('prompts', () => {
  it('keeps immutable versions: a changed push is the next version, an unchanged one returns the latest', async () => {
    const first = await request(url, 'POST', '/v1/prompts', textPrompt('versions'));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ prompt_version: 'versions@1', version: 1 });
    const same = await request(url, 'POST', '/v1/prompts', textPrompt('versions'));
    expect(same.status).toBe(200);
    expect(same.body.prompt_version).toBe('versions@1');
    const changed = await request(url, 'POST', '/v1/prompts', { ...textPrompt('versions'), params: { temperature: 1 } });
    expect(changed.status).toBe(201);
    expect(changed.body.prompt_version).toBe('versions@2');
    expect((await request(url, 'GET', '/v1/prompts/versions@1')).body.params).toEqual({ temperature: 0 });
    expect((await request(url, 'GET', '/v1/prompts/versions')).body.prompt_version).toBe('versions@2');
    expect((await request(url, 'GET', '/v1/prompts/versions/versions')).body.versions.map((v: any) => v.version)).toEqual([2, 1]);
    const missing = await request(url, 'GET', '/v1/prompts/versions@9');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toMatch(/versions@9 .*latest version of versions is versions@2/);
  });

  it('refuses an invalid definition, naming the field', async () => {
    const res = await request(url, 'POST', '/v1/prompts', { name: 'Bad Name', messages: [{ role: 'robot', content: 'x' }] });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/name/);
    expect(res.body.error.message).toMatch(/role/);
  });
});

describe('dataset snapshots', () => {
  it('gives the same content-addressed id to the same rows as JSONL or CSV, and stores nothing new the second time', async () => {
    const jsonl = '{"id":"a","vars":{"q":"1+1"},"expected":"2"}\n{"vars":{"q":"2+2"},"id":"b","expected":"4"}\n';
    const csv = 'id,q,expected\na,1+1,2\nb,2+2,4\n';
    const first = await uploadDataset(url, jsonl, 'application/x-ndjson', '?name=sums');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ row_count: 2, name: 'sums', source_format: 'jsonl' });
    expect(first.body.data_snapshot_id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const files = datasetFiles();
    const stored = readFileSync(path.join(db.dataDir, 'datasets', `${first.body.data_snapshot_id.slice(7)}.jsonl`));
    expect(`sha256:${createHash('sha256').update(stored).digest('hex')}`).toBe(first.body.data_snapshot_id);
    const again = await uploadDataset(url, csv, 'text/csv');
    expect(again.status).toBe(200);
    expect(again.body.data_snapshot_id).toBe(first.body.data_snapshot_id);
    expect(datasetFiles()).toEqual(files);
    const rows = await request(url, 'GET', `/v1/datasets/${first.body.data_snapshot_id}/rows`);
    expect(rows.text).toBe(stored.toString('utf8'));
  });

  it('rejects invalid rows with their line numbers and stores nothing', async () => {
    const before = datasetFiles();
    const listed = (await request(url, 'GET', '/v1/datasets')).body.datasets.length;
    const res = await uploadDataset(url, '{"id":"x","vars":{"q":1}}\nnot json\n{"id":"y","vars":[1]}\n{"id":"x","vars":{"q":2}}\n');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION');
    expect(res.body.error.details.problems).toEqual([
      expect.stringMatching(/^line 2: invalid JSON/),
      'line 3: vars must be a JSON object, got an array',
      "line 4: duplicate id 'x': also used on line 1",
    ]);
    expect(datasetFiles()).toEqual(before);
    expect((await request(url, 'GET', '/v1/datasets')).body.datasets.length).toBe(listed);
    const csv = await uploadDataset(url, 'id,q\n1,a\n2,b,extra\n', 'text/csv');
    expect(csv.status).toBe(400);
    expect(csv.body.error.message).toMatch(/line 3: the row has 3 fields, the header has 2/);
  });

  it('refuses other content types (415) and uploads over DATASET_UPLOAD_LIMIT_BYTES (413), leaving no file behind', async () => {
    const json = await request(url, 'POST', '/v1/datasets', { rows: [] });
    expect(json.status).toBe(415);
    expect(json.body.error.message).toMatch(/application\/x-ndjson, application\/jsonl or text\/csv/);
    const before = datasetFiles();
    const big = casesJsonl(600);
    expect(big.length).toBeGreaterThan(20_000);
    const res = await uploadDataset(url, big);
    expect(res.status).toBe(413);
    expect(res.body.error.message).toMatch(/DATASET_UPLOAD_LIMIT_BYTES/);
    expect(datasetFiles()).toEqual(before);
  });
});

describe('evaluation runs against an OpenAI-compatible server', () => {
  let live: any;
  let snapshot: string;

  it('runs live: three files, valid run_metadata, results in dataset order, the seed and key sent', async () => {
    const version = await pushPrompt(textPrompt('qa'));
    snapshot = await upload(casesJsonl(12));
    const before = openai.requests.length;
    live = await run({ prompt_version: version, data_snapshot_id: snapshot, provider: openaiProvider(), model: 'gpt-test', seed: 7, concurrency: 4, thresholds: { exact: 1 } });
    expect(live.status, live.error_message).toBe('succeeded');
    expect(openai.requests.length - before).toBe(12);
    expect(live.files.map((f: any) => f.name)).toEqual(['results.jsonl', 'run_metadata.json', 'summary.json']);
    for (const f of live.files) {
      const bytes = readFileSync(path.join(live.run_dir, f.name));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
    }
    const metadata = JSON.parse(readFileSync(path.join(live.run_dir, 'run_metadata.json'), 'utf8'));
    expect(validateRunMetadata(metadata)).toEqual({ ok: true });
    expect(metadata).toMatchObject({ commit_sha: 'abcdef0123456789', prompt_version: 'qa@1', data_snapshot_id: snapshot, seed: 7, mode: 'live', model: 'gpt-test', provider: { type: 'openai', base_url: openai.url } });
    const lines = readFileSync(path.join(live.run_dir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(Array.from({ length: 12 }, (_, i) => `c${i + 1}`));
    expect(lines[0]).toMatchObject({ vars: { text: 'case 1' }, output: 'echo: case 1', expected: 'echo: case 1', pass: true, error: null, scores: { exact: { score: 1, pass: true } } });
    expect(live.summary).toMatchObject({ cases: 12, errors: 0, passed: 12, thresholds: { passed: true } });
    expect(live.thresholds_passed).toBe(true);
    const sent = openai.requests.slice(before).map((r) => r.body as { seed: number; temperature: number });
    expect(new Set(sent.map((b) => typeof b.seed))).toEqual(new Set(['number']));
    expect(sent[0]!.temperature).toBe(0);
    expect(openai.requests.slice(before).every((r) => r.headers.authorization === `Bearer ${SECRET}`)).toBe(true);
  });

  it('replays it byte for byte without asking the provider', async () => {
    const before = openai.requests.length;
    const res = await request(url, 'POST', `/v1/evaluations/${live.run_id}/rerun`, { mode: 'replay' });
    expect(res.status).toBe(202);
    const replay = await waitForRun(url, res.body.run_id);
    expect(replay.status, replay.error_message).toBe('succeeded');
    expect(replay).toMatchObject({ mode: 'replay', rerun_of: live.run_id });
    expect(openai.requests.length).toBe(before);
    expect(readFileSync(path.join(replay.run_dir, 'results.jsonl'))).toEqual(readFileSync(path.join(live.run_dir, 'results.jsonl')));
    const hash = (r: any) => r.files.find((f: any) => f.name === 'results.jsonl').sha256;
    expect(hash(replay)).toBe(hash(live));
    expect(replay.summary.execution).toMatchObject({ cached: 12, provider_calls: 0 });
  });

  it('keeps the API key out of files, rows and logs', async () => {
    for (const name of readdirSync(live.run_dir)) expect(readFileSync(path.join(live.run_dir, name), 'utf8')).not.toContain(SECRET);
    const row = await request(url, 'GET', `/v1/evaluations/${live.run_id}`);
    expect(row.text).not.toContain(SECRET);
    expect(JSON.stringify(server.logs)).not.toContain(SECRET);
    const recorded = await server.database.db.selectFrom('evaluation_responses').selectAll().execute();
    expect(recorded.length).toBeGreaterThanOrEqual(12);
    expect(JSON.stringify(recorded)).not.toContain(SECRET);
  });

  it('fails a replayed case whose answer was never recorded, saying so, and keeps the run going', async () => {
    const replay = await run({ prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: openaiProvider(), model: 'gpt-test', seed: 8, mode: 'replay' });
    expect(replay.status).toBe('succeeded');
    expect(replay.summary).toMatchObject({ cases: 12, errors: 12 });
    const failing = await request(url, 'GET', `/v1/evaluations/${replay.run_id}/results?error=true&limit=1`);
    expect(JSON.parse(failing.text.trim()).error).toMatch(/^replay: no recorded response for this case \(provider openai, model gpt-test, seed \d+/);
  });

  it('waits out a 429 Retry-After and finishes every case', async () => {
    openai.script({ status: 429, retryAfter: '1', body: { error: { message: 'Rate limit reached' } } });
    const before = openai.requests.length;
    const started = Date.now();
    const done = await run({ prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: openaiProvider(), model: 'gpt-test', seed: 429, concurrency: 1 });
    expect(done.status).toBe('succeeded');
    expect(done.summary).toMatchObject({ cases: 12, errors: 0, passed: 12 });
    expect(openai.requests.length - before).toBe(13);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const retry = server.logs.find((l) => l.msg === 'provider request failed; retrying' && l.run_id === done.run_id);
    expect(retry).toMatchObject({ upstream_status: 429, attempt: 1 });
    expect(retry!.delay_ms as number).toBeGreaterThanOrEqual(1000);
  });

  it('answers llm_judge scorers through the response record too: the replay asks nobody', async () => {
    const judge = { name: 'judge', type: 'llm_judge', provider: 'run', model: 'gpt-judge', rubric: 'Say PASS if {{output}} repeats the text.' };
    const before = openai.requests.length;
    const first = await run({ prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: openaiProvider(), model: 'gpt-test', seed: 77, scorers: [{ name: 'exact', type: 'exact' }, judge] });
    expect(first.status, first.error_message).toBe('succeeded');
    // 12 answers and 12 verdicts; the fake judge echoes the rubric, which holds PASS.
    expect(openai.requests.length - before).toBe(24);
    expect(first.summary.scorers.judge).toMatchObject({ scored: 12, pass_rate: 1 });
    const replay = await waitForRun(url, (await request(url, 'POST', `/v1/evaluations/${first.run_id}/rerun`, {})).body.run_id);
    expect(openai.requests.length - before).toBe(24);
    expect(readFileSync(path.join(replay.run_dir, 'results.jsonl'))).toEqual(readFileSync(path.join(first.run_dir, 'results.jsonl')));
    const unknownJudge = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: 'echo', scorers: [{ ...judge, provider: 'other' }] });
    expect(unknownJudge.status).toBe(400);
    expect(unknownJudge.body.error.message).toMatch(/scorers\.0\.provider: 'other' is not a provider of this run/);
  });

  it('records a provider failure as the case error, and a replay reproduces it word for word', async () => {
    const version = await pushPrompt(textPrompt('failing'));
    const small = await upload(casesJsonl(3, 'fail'));
    openai.script({ status: 400, body: { error: { message: 'model gpt-missing does not exist' } } });
    const first = await run({ prompt_version: version, data_snapshot_id: small, provider: openaiProvider(), model: 'gpt-test', concurrency: 1 });
    expect(first.summary.errors).toBe(1);
    const replay = await waitForRun(url, (await request(url, 'POST', `/v1/evaluations/${first.run_id}/rerun`, {})).body.run_id);
    expect(readFileSync(path.join(replay.run_dir, 'results.jsonl'))).toEqual(readFileSync(path.join(first.run_dir, 'results.jsonl')));
    const errored = await request(url, 'GET', `/v1/evaluations/${first.run_id}/results?error=true`);
    expect(errored.text).toMatch(/HTTP 400.*model gpt-missing does not exist/);
  });
});

describe('bad inputs', () => {
  it('names the missing template variable and the cases without it', async () => {
    const version = await pushPrompt({ name: 'needs-question', messages: [{ role: 'user', content: 'Q: {{question}} ({{text}})' }] });
    const snapshot = await upload(casesJsonl(7, 'novar'));
    const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: version, data_snapshot_id: snapshot, provider: 'echo' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/missing variable 'question' in 7 case\(s\)/);
    expect(res.body.error.details.problems[0]).toMatch(/uses variable 'question', missing from case 'c1', 'c2', 'c3', 'c4', 'c5', \.\.\./);
  });

  it('answers 404 for an unknown prompt version or snapshot, and 400 for an invalid request, naming the field', async () => {
    const snapshot = await upload(casesJsonl(2, 'x'));
    const unknownVersion = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@42', data_snapshot_id: snapshot, provider: 'echo' });
    expect(unknownVersion.status).toBe(404);
    expect(unknownVersion.body.error.message).toMatch(/prompt version qa@42 .*latest version of qa is qa@1/);
    const unknownSnapshot = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@1', data_snapshot_id: `sha256:${'0'.repeat(64)}`, provider: 'echo' });
    expect(unknownSnapshot.status).toBe(404);
    const invalid = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: 'echo', scorers: [{ name: 'r', type: 'regex', pattern: '(' }], mode: 'dry' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.message).toMatch(/mode/);
    const badRegex = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: 'echo', scorers: [{ name: 'r', type: 'regex', pattern: '(' }] });
    expect(badRegex.status).toBe(400);
    expect(badRegex.body.error.message).toMatch(/scorers\.0\.pattern: invalid regular expression/);
    const literalKey = await request(url, 'POST', '/v1/evaluations', { prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: { type: 'openai', base_url: openai.url, headers: { Authorization: 'Bearer sk-literal' } }, model: 'm' });
    expect(literalKey.status).toBe(400);
    expect(literalKey.body.error.message).toMatch(/provider\.headers\.Authorization: put the secret in an environment variable/);
  });

  it('fails the run, naming the variable, when the provider key variable is unset in the process that runs it', async () => {
    const snapshot = await upload(casesJsonl(2, 'nokey'));
    const failed = await run({ prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: { type: 'openai', base_url: openai.url, api_key_env: 'UNSET_TEST_API_KEY' }, model: 'm' });
    expect(failed.status).toBe('failed');
    expect(failed.error_message).toMatch(/environment variable UNSET_TEST_API_KEY is not set/);
  });
});

describe('results, files and comparisons', () => {
  let base: any;
  let head: any;

  it('compares two runs case by case and lists the flipped cases', async () => {
    const version = await pushPrompt(textPrompt('caps'));
    const rows = ['Alpha', 'beta', 'Gamma', 'delta', 'Epsilon', 'zeta'].map((w, i) => ({ id: `w${i}`, vars: { text: w }, expected: w.toLowerCase() }));
    const snapshot = await upload(rows.map((r) => JSON.stringify(r)).join('\n'));
    base = await run({ prompt_version: version, data_snapshot_id: snapshot, provider: 'echo', scorers: [{ name: 'exact', type: 'exact', case_insensitive: true }] });
    head = await run({ prompt_version: version, data_snapshot_id: snapshot, provider: 'echo', scorers: [{ name: 'exact', type: 'exact' }] });
    expect(base.summary.passed).toBe(6);
    expect(head.summary.passed).toBe(3);
    const res = await request(url, 'GET', `/v1/evaluations/compare?base=${base.run_id}&head=${head.run_id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pairedCases: 6, same_dataset: true, flippedTotal: 3 });
    expect(res.body.flipped.map((f: any) => [f.id, f.from, f.to])).toEqual([['w0', 'pass', 'fail'], ['w2', 'pass', 'fail'], ['w4', 'pass', 'fail']]);
    expect(res.body.scorers[0]).toMatchObject({ scorer: 'exact', baseMean: 1, headMean: 0.5, meanDelta: -0.5, mcnemar: { passToFail: 3, failToPass: 0 } });
  });

  it('streams results filtered by pass/fail, in dataset order', async () => {
    const failing = await request(url, 'GET', `/v1/evaluations/${head.run_id}/results?pass=false`);
    expect(failing.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(failing.text.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['w0', 'w2', 'w4']);
    const page = await request(url, 'GET', `/v1/evaluations/${head.run_id}/results?offset=1&limit=2`);
    expect(page.text.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['w1', 'w2']);
  });

  it('serves the run files and refuses every name that would leave the run folder', async () => {
    const ok = await request(url, 'GET', `/v1/evaluations/${head.run_id}/files/results.jsonl`);
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(readFileSync(path.join(head.run_dir, 'results.jsonl'), 'utf8'));
    symlinkSync('/etc/passwd', path.join(head.run_dir, 'escape.txt'));
    const attempts = ['..%2F..%2F..%2Fetc%2Fpasswd', '..', '.', '%2Fetc%2Fpasswd', '..%2Fpglite.lock', '..%5C..%5Cserver.json', 'escape.txt', '.hidden', 'results.jsonl%00.txt', '%2e%2e%2f%2e%2e%2fserver.json'];
    for (const name of attempts) {
      const res = await request(url, 'GET', `/v1/evaluations/${head.run_id}/files/${name}`);
      expect([400, 404], `${name}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
      expect(res.text).not.toMatch(/root:|"token"/);
    }
    // Unnormalised dot segments straight on the socket (fetch would resolve them).
    for (const raw of [`/v1/evaluations/${head.run_id}/files/../../../../etc/passwd`, `/v1/evaluations/../../etc/passwd/files/x`]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${url}${raw}`, { method: 'GET', path: raw }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect([400, 404]).toContain(status);
    }
    const badId = await request(url, 'GET', '/v1/evaluations/..%2F..%2Fdatasets/files/x');
    expect(badId.status).toBe(400);
  });

  it('serves the run_metadata JSON Schema', async () => {
    const res = await request(url, 'GET', '/v1/schemas/run-metadata');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(RUN_METADATA_SCHEMA)));
  });

  it('cancels a running run and keeps its partial results', async () => {
    const version = await pushPrompt(textPrompt('slow'));
    const snapshot = await upload(casesJsonl(40, 'slow'));
    const res = await request(url, 'POST', '/v1/evaluations', { prompt_version: version, data_snapshot_id: snapshot, provider: { type: 'echo', delay_ms: 100 }, concurrency: 1 });
    await waitForRun(url, res.body.run_id, 20_000, ['running']);
    const cancelled = await request(url, 'POST', `/v1/evaluations/${res.body.run_id}/cancel`);
    expect(cancelled.status).toBe(202);
    const done = await waitForRun(url, res.body.run_id);
    expect(done.status).toBe('cancelled');
    expect(existsSync(path.join(done.run_dir, 'results.jsonl.partial'))).toBe(true);
    expect(existsSync(path.join(done.run_dir, 'results.jsonl'))).toBe(false);
    const list = await request(url, 'GET', '/v1/evaluations?status=cancelled');
    expect(list.body.runs.map((r: any) => r.run_id)).toContain(res.body.run_id);
  });
});
