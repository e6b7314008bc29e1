import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL, request, textPrompt, uploadDataset } from '../helpers/eval-helpers.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { rawScorersText, scorerList, validScorerConfig } from '../helpers/scorer-arbitraries.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Properties over the `scorers` field of POST /v1/evaluations, against the running service with a
 * fake OpenAI-compatible endpoint for the run's provider and inline judges: every scorer type with
 * adversarial values, unknown fields, wrong types, deep and huge values, NUL and lone surrogates,
 * -0 and 1e400 in the JSON text. Properties: never a 5xx; a refusal is a 4xx in the error format
 * whose message names the scorers field, and creates no run and no job; an accepted run ends
 * (succeeded, or failed with an error) within a bounded wait while /health keeps answering within
 * 1 s. EVALOPS_FUZZ_RUNS sets the submissions (default 40); a tenth of it (at least 3) are lists of
 * valid scorers run to the end.
 */

const RUNS = Number(process.env.EVALOPS_FUZZ_RUNS ?? 40);
const RUN_WAIT_MS = 30_000;
const HEALTH_BOUND_MS = 1_000;
const KEY_VAR = 'SCORER_FUZZ_API_KEY';
const SECRET = 'sk-scorer-fuzz-5c1e09a7';

let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let snapshot: string;
const statuses = new Map<number, number>();
const slowestHealth: number[] = [];
const ended = new Map<string, number>();

beforeAll(async () => {
  process.env[KEY_VAR] = SECRET;
  db = await createTestDatabase();
  // Judges get a verdict; the run's own requests are echoed (`echo: <text>`).
  openai = await startFakeOpenAIServer({
    apiKey: SECRET,
    reply: ({ model }) => (model === 'judge' ? '{"score": 0.75, "reason": "close enough"}' : undefined),
  });
  server = await startTestServer(db, { RATE_LIMIT_READ_PER_MINUTE: '0', RATE_LIMIT_WRITE_PER_MINUTE: '0' });
  expect((await request(server.url, 'POST', '/v1/prompts', textPrompt('scorerfuzz'))).status).toBe(201);
  // Outputs of a realistic size: short answers, a paragraph, a few KiB of JSON.
  const rows = [
    { id: 'c1', vars: { text: 'case 1' }, expected: 'echo: case 1' },
    { id: 'c2', vars: { text: 'The answer is 1,234.5. '.repeat(20) }, expected: 1234.5 },
    { id: 'c3', vars: { text: JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ a: i % 5, b: 'x'.repeat(i % 7) }))) }, expected: { a: 1 } },
  ];
  const upload = await uploadDataset(server.url, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  expect(upload.status, upload.text).toBe(201);
  snapshot = upload.body.data_snapshot_id;
});

afterAll(async () => {
  await server?.close(2000);
  await openai?.close();
  await db?.cleanup();
  delete process.env[KEY_VAR];
  const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ');
  const runs = [...ended].map(([s, n]) => `${s}:${n}`).join(' ');
  console.log(`scorer fuzz: statuses ${byStatus}; accepted runs ended ${runs || 'none'}; slowest /health ${Math.round(Math.max(0, ...slowestHealth))} ms`);
});

async function counts(): Promise<{ runs: number; jobs: number }> {
  const row = await server.database.db
    .selectNoFrom((eb) => [
      eb.selectFrom('evaluation_runs').select((e) => e.fn.countAll<number>().as('n')).as('runs'),
      eb.selectFrom('jobs').select((e) => e.fn.countAll<number>().as('n')).as('jobs'),
    ])
    .executeTakeFirstOrThrow();
  return { runs: Number(row.runs), jobs: Number(row.jobs) };
}

/** The spec with `scorersText` (JSON text) as its scorers: the run's provider is the fake endpoint. */
function body(scorersText: string): string {
  const provider = { type: 'openai', base_url: openai.url, api_key_env: KEY_VAR, backoff_base_ms: 20, max_attempts: 2 };
  return `{"prompt_version":"scorerfuzz@1","data_snapshot_id":${JSON.stringify(snapshot)},"provider":${JSON.stringify(provider)},"model":"m","concurrency":2,"scorers":${scorersText}}`;
}

/** Polls the run to its end while probing /health; returns the run and the slowest /health answer. */
async function followRun(runId: string): Promise<{ run: any; slowest: number }> {
  let done = false;
  let slowest = 0;
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const deadline = Date.now() + RUN_WAIT_MS;
  let run: any;
  try {
    while (Date.now() < deadline) {
      run = (await request(server.url, 'GET', `/v1/evaluations/${runId}`)).body;
      if (FINAL.includes(run.status)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    done = true;
    await probe;
  }
  return { run, slowest };
}

/** Submits; checks the answer, what was stored, and (when accepted) the run's end and /health. */
async function check(scorersText: string): Promise<{ status: number; text: string }> {
  const before = await counts();
  const res = await fetch(`${server.url}/v1/evaluations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(scorersText), signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const shown = `scorers ${scorersText.slice(0, 400)} -> ${res.status} ${text.slice(0, 400)}`;
  expect(res.status, shown).toBeLessThan(500);
  const answer = JSON.parse(text) as any;
  if (res.status >= 400) {
    expect(answer.error, shown).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    expect(answer.error.message, shown).toMatch(/scorers/);
    expect(await counts(), `refused but stored: ${shown}`).toEqual(before);
    return { status: res.status, text };
  }
  expect(res.status, shown).toBe(202);
  const { run, slowest } = await followRun(answer.run_id);
  slowestHealth.push(slowest);
  expect(FINAL, `run ${answer.run_id} did not end within ${RUN_WAIT_MS} ms: ${JSON.stringify(run).slice(0, 400)} (${shown})`).toContain(run.status);
  ended.set(run.status, (ended.get(run.status) ?? 0) + 1);
  expect(run.status, shown).not.toBe('cancelled');
  if (run.status === 'failed') expect(run.error, `a failed run says why: ${JSON.stringify(run).slice(0, 400)}`).toEqual(expect.any(String));
  expect(slowest, `slowest /health during the run: ${Math.round(slowest)} ms (${shown})`).toBeLessThan(HEALTH_BOUND_MS);
  return { status: res.status, text };
}

describe('fuzzing the scorers of an evaluation', () => {
  it('never a 5xx; a 4xx names the scorers field and stores no run and no job; an accepted run ends', async () => {
    const text = fc.oneof({ weight: 4, arbitrary: scorerList(openai.url, KEY_VAR).map((v) => JSON.stringify(v) ?? 'null') }, { weight: 1, arbitrary: rawScorersText });
    await fc.assert(fc.asyncProperty(text, async (t) => void (await check(t))), { numRuns: RUNS, endOnFailure: true });
    expect(statuses.size).toBeGreaterThan(1);
  }, Math.max(120_000, RUNS * 3_000));

  it('valid scorers of every type with adversarial values are accepted and run to the end while /health answers within 1 s', async () => {
    const list = fc.array(validScorerConfig(openai.url, KEY_VAR), { minLength: 2, maxLength: 5 });
    await fc.assert(
      fc.asyncProperty(list, async (scorers) => {
        // Unique names, so that only the fields under test decide.
        const named = scorers.map((s, i) => ({ ...s, name: `s${i}` }));
        const answer = await check(JSON.stringify(named));
        expect(answer.status, `refused valid scorers ${JSON.stringify(named).slice(0, 400)}: ${answer.text.slice(0, 400)}`).toBe(202);
      }),
      { numRuns: Math.max(3, Math.round(RUNS / 10)), endOnFailure: true },
    );
  }, Math.max(120_000, RUNS * 3_000));

  // Found by the property above: Fastify's parser refused these keys as "body: not valid JSON",
  // which is untrue and named no field.
  it('a __proto__ key or a constructor key holding prototype in a scorer is refused naming where it is', async () => {
    const cases: Array<[string, RegExp]> = [
      ['[{"name":"s","type":"json_schema","schema":{"properties":{"__proto__":{"type":"string"}}}}]', /^body\.scorers\.0\.schema\.properties\.__proto__: the key "__proto__" is not accepted/],
      ['[{"name":"s","type":"json_schema","schema":{"constructor":{"prototype":{"x":1}}}}]', /^body\.scorers\.0\.schema\.constructor: a "constructor" key holding "prototype" is not accepted/],
      ['[{"name":"s","type":"exact"},{"name":"t","type":"exact","__proto__":{"type":"regex"}}]', /^body\.scorers\.1\.__proto__: /],
    ];
    for (const [scorers, message] of cases) {
      const answer = await check(scorers);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(message) });
    }
  });

  it('still answers afterwards', async () => {
    expect((await request(server.url, 'GET', '/health')).status).toBe(200);
    expect((await request(server.url, 'GET', '/v1/evaluations?limit=1')).status).toBe(200);
  });
});
