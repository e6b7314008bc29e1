import { readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTimeout } from '../../src/db/database.ts';
import { casesJsonl, textPrompt } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Property tests over every route's path, query and body with random and adversarial input (huge
 * numbers, deep nesting, long strings, wrong types, unicode, lone surrogates, NUL, `__proto__` and
 * `constructor` keys, mutated valid bodies, wrong content types, hostile Authorization headers).
 * Properties: no 5xx, every answer within 10 s, the process keeps answering, and a refused request
 * (4xx) leaves every table and the dataset folder as they were. EVALOPS_FUZZ_RUNS sets the runs per
 * route (default 60); the total is printed.
 */

const RUNS = Number(process.env.EVALOPS_FUZZ_RUNS ?? 60);
const ADMIN_NAME = 'fuzz-admin-7f3a9c';

let db: TestDatabase;
let server: TestServer;
let adminKey: string;
let known: { jobId: string; runId: string; snapshot: string; prompt: string };
let cases = 0;
const statuses = new Map<number, number>();

beforeAll(async () => {
  db = await createTestDatabase();
  // Rate limits and load shedding off: the fuzzer must reach the handlers, and it shares this
  // process (and two busy cores) with the server, so event-loop lag here says nothing about the API.
  server = await startTestServer(db, { RATE_LIMIT_READ_PER_MINUTE: '0', RATE_LIMIT_WRITE_PER_MINUTE: '0', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', BODY_LIMIT_BYTES: '262144' });
  adminKey = (await server.api('POST', '/v1/admin/api-keys', { name: ADMIN_NAME, scopes: ['admin'] })).body.key;
  const auth = { authorization: `Bearer ${adminKey}` };
  await server.api('POST', '/v1/prompts', textPrompt('fuzz'), auth);
  const upload = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...auth }, body: casesJsonl(3) });
  const snapshot = ((await upload.json()) as { data_snapshot_id: string }).data_snapshot_id;
  const run = await server.api('POST', '/v1/evaluations', { prompt_version: 'fuzz@1', data_snapshot_id: snapshot, provider: 'echo', seed: 1 }, auth);
  const job = await server.api('POST', '/v1/jobs', { type: 'noop' }, auth);
  known = { jobId: job.body.job_id, runId: run.body.run_id, snapshot, prompt: 'fuzz' };
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
  const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ');
  console.log(`fuzz: ${cases} cases against ${server ? 'the API' : 'nothing'} (statuses ${byStatus})`);
});

async function snapshotState(): Promise<string> {
  const row = await server.database.db
    .selectNoFrom((eb) => [
      eb.selectFrom('jobs').select((e) => e.fn.countAll<number>().as('n')).as('jobs'),
      eb.selectFrom('prompts').select((e) => e.fn.countAll<number>().as('n')).as('prompts'),
      eb.selectFrom('dataset_snapshots').select((e) => e.fn.countAll<number>().as('n')).as('snapshots'),
      eb.selectFrom('evaluation_runs').select((e) => e.fn.countAll<number>().as('n')).as('runs'),
      eb.selectFrom('api_keys').select((e) => e.fn.countAll<number>().as('n')).where('revoked_at', 'is', null).as('active_keys'),
      eb.selectFrom('api_keys').select((e) => e.fn.countAll<number>().as('n')).as('keys'),
      eb.selectFrom('runtime_limits').select((e) => e.fn.countAll<number>().as('n')).as('limits'),
    ])
    .executeTakeFirstOrThrow();
  const files = readdirSync(path.join(db.dataDir, 'datasets'), { recursive: true }).length;
  return JSON.stringify({ ...row, files });
}

interface Case {
  method: string;
  url: string;
  payload?: string;
  headers: Record<string, string>;
}

/** Sends one case; checks no 5xx, no hang, nothing stored on a 4xx. */
async function check(c: Case): Promise<void> {
  const before = await snapshotState();
  const res = await withTimeout(server.app.inject({ method: c.method as 'GET', url: c.url, headers: c.headers, ...(c.payload !== undefined ? { payload: c.payload } : {}) }), 10_000, `${c.method} ${c.url.slice(0, 200)}`);
  cases += 1;
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  expect(res.statusCode, `${c.method} ${c.url.slice(0, 300)} ${String(c.payload).slice(0, 300)} -> ${res.body.slice(0, 500)}`).toBeLessThan(500);
  if (res.statusCode >= 400) {
    expect(await snapshotState(), `${c.method} ${c.url.slice(0, 300)} was refused (${res.statusCode}) but changed the database`).toBe(before);
    if (c.method !== 'HEAD' && res.headers['content-type']?.toString().includes('json')) expect(JSON.parse(res.body).error?.message, `${res.statusCode} ${res.body.slice(0, 300)}`).toEqual(expect.any(String));
  }
  // A fuzzed limit change stays for one case only: the next cases must reach the handlers.
  if (c.url.startsWith('/v1/admin/limits') && res.statusCode < 300) {
    await server.database.db.deleteFrom('runtime_limits').execute();
    await server.app.inject({ method: 'GET', url: '/v1/admin/limits', headers: { authorization: `Bearer ${adminKey}` } });
  }
}

// ---- adversarial values -------------------------------------------------------------------

const HOSTILE_STRINGS = [
  '', ' ', '..', '../..', '%2e%2e%2f', '%252e%252e', '/etc/passwd', '\\..\\', '\u0000', 'a\u0000b', '\ud800', '\udc00x', '💥', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'null', 'undefined', 'NaN', '-1', '0', '1e309', '9007199254740993', '-0', 'true',
  "' OR 1=1 --", '"; DROP TABLE jobs; --', '$1', '{{env.PATH}}', '${process.env}', '<script>alert(1)</script>', 'x'.repeat(5000), 'sha256:' + 'f'.repeat(64),
  '00000000-0000-0000-0000-000000000000', 'noop', 'sleep', 'evaluation', 'fuzz@1', 'fuzz@999999999', 'rate.read_per_minute', 'job.payload_bytes.noop', 'read', 'admin',
];
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => s.repeat(2000)) },
);
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 0.5, 1e21, -1e-7),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileLeaf,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'prototype')), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** JSON text that JSON.stringify cannot produce: huge literals, deep nesting, raw __proto__ keys, duplicates. */
const rawJsonText = fc.oneof(
  fc.nat({ max: 20_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.nat({ max: 5_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.constantFrom(
    '{"type":"noop","payload":{"__proto__":{"polluted":true}}}',
    '{"__proto__":{"isAdmin":true},"type":"noop"}',
    '{"constructor":{"prototype":{"polluted":true}},"type":"noop"}',
    '{"type":"noop","payload":{"n":1e400}}',
    '{"type":"noop","payload":{"n":-1e400},"priority":1e400}',
    '{"type":"noop","max_attempts":123456789012345678901234567890}',
    '{"type":"noop","type":"sleep","payload":{"ms":1}}',
    '{"type":"noop","payload":{"s":"\\u0000"}}',
    '{"type":"noop","payload":{"s":"\\ud800"}}',
    '{"type":"noop","idempotency_key":"\\u0000"}',
    '{"name":"ok","scopes":["read"],"__proto__":{"scopes":["admin"]}}',
    '{"rate.read_per_minute":"1e3"}',
    '{"body.max_bytes":1024.5}',
    '',
    'null',
    '[]',
    '"string"',
    '{',
    '\u0000',
  ),
);

// ---- routes ---------------------------------------------------------------------------------

interface RouteSpec {
  method: string;
  template: string;
  query: string[];
  /** A valid body to mutate, and its content type. */
  valid?: () => unknown;
  contentType?: string;
}

function validBody(route: string): (() => unknown) | undefined {
  const bodies: Record<string, () => unknown> = {
    'POST /v1/jobs': () => ({ type: 'noop', payload: { a: 1 }, idempotency_key: 'k1', max_attempts: 2, priority: 1, run_at: new Date().toISOString() }),
    'POST /v1/jobs/batch': () => ({ jobs: [{ type: 'noop', payload: { a: 1 }, idempotency_key: 'k2', max_attempts: 2, priority: 1, run_at: new Date().toISOString() }, { type: 'sleep', payload: { ms: 1 } }] }),
    'POST /v1/prompts': () => textPrompt('fuzz'),
    'POST /v1/evaluations': () => ({ prompt_version: 'fuzz@1', data_snapshot_id: known.snapshot, provider: 'echo', seed: 1, sample_size: 1 }),
    'POST /v1/evaluations/{id}/rerun': () => ({ mode: 'replay' }),
    'POST /v1/admin/api-keys': () => ({ name: 'fz', scopes: ['read'] }),
    'PUT /v1/admin/limits': () => ({ 'rate.read_per_minute': 100 }),
  };
  return bodies[route];
}

/** Replaces, adds or removes one field of a valid body, at any depth. */
function mutate(valid: unknown): fc.Arbitrary<unknown> {
  const base = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
  const keys = Object.keys(base);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), hostileJson).map(([k, v]) => ({ ...base, [k]: v })),
    fc.tuple(hostileString, hostileJson).map(([k, v]) => ({ ...base, [k]: v })),
    fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))),
    fc.tuple(fc.constantFrom(...keys), fc.nat({ max: 200 })).map(([k, d]) => ({ ...base, [k]: JSON.parse('['.repeat(d) + ']'.repeat(d) || 'null') })),
  );
}

/** Percent-encodes; a lone surrogate (which encodeURIComponent refuses) becomes %uD800, which the server must cope with. */
function encode(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return escape(v);
  }
}

function pathValue(param: string, template: string): fc.Arbitrary<string> {
  const valid = param === 'id' ? (template.startsWith('/v1/jobs') ? known.jobId : template.startsWith('/v1/datasets') ? known.snapshot : known.runId) : param === 'name' ? (template.includes('/files/') ? 'results.jsonl' : known.prompt) : param === 'version' ? '1' : param === 'ref' ? 'fuzz@1' : 'fz';
  return fc.tuple(fc.oneof({ weight: 1, arbitrary: fc.constant(valid) }, { weight: 4, arbitrary: hostileString }), fc.boolean()).map(([v, keepSlashes]) => {
    try {
      return keepSlashes ? encodeURIComponent(v).replace(/%2F/g, '/') : encodeURIComponent(v);
    } catch {
      return escape(v); // lone surrogates: %uD800 style, the server must cope
    }
  });
}

function caseFor(route: RouteSpec): fc.Arbitrary<Case> {
  const params = [...route.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const pathArb = fc.tuple(...params.map((p) => pathValue(p, route.template))).map((values) => {
    let i = 0;
    return route.template.replace(/\{(\w+)\}/g, () => values[i++]!);
  });
  const queryArb = fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...(route.query.length ? route.query : ['limit'])), hostileString), fc.oneof(hostileString, hostileNumber.map(String))), { maxLength: 4 })
    .map((pairs) => pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'));
  const hasBody = route.method !== 'GET' && route.method !== 'HEAD' && route.method !== 'DELETE';
  const valid = route.valid?.();
  const bodyArb: fc.Arbitrary<{ payload?: string; type?: string }> = hasBody
    ? fc.oneof(
        { weight: 3, arbitrary: (valid ? mutate(valid) : hostileJson).map((v) => ({ payload: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
        { weight: 2, arbitrary: hostileJson.map((v) => ({ payload: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
        { weight: 2, arbitrary: rawJsonText.map((t) => ({ payload: t, type: 'application/json' })) },
        { weight: 1, arbitrary: fc.tuple(hostileString, fc.constantFrom('text/plain', 'application/x-ndjson', 'text/csv', 'application/json; charset=utf-16', 'multipart/form-data')).map(([t, type]) => ({ payload: t, type })) },
        { weight: 1, arbitrary: fc.constant({}) },
      )
    : fc.constant({});
  return fc.tuple(pathArb, queryArb, bodyArb).map(([p, q, b]) => ({
    method: route.method,
    url: q ? `${p}?${q}` : p,
    ...(b.payload !== undefined ? { payload: b.payload } : {}),
    headers: { authorization: `Bearer ${adminKey}`, ...(b.type ? { 'content-type': b.type } : {}) },
  }));
}

describe('fuzzing every route', () => {
  it('no 5xx, no hang, nothing stored on rejection: body, query and path of every documented route', async () => {
    const doc = JSON.parse((await server.app.inject({ method: 'GET', url: '/docs/json' })).body) as {
      paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
    };
    const routes: RouteSpec[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const route = `${method.toUpperCase()} ${template}`;
        routes.push({ method: method.toUpperCase(), template, query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name), valid: validBody(route) });
      }
    }
    // Hidden routes too: the CLI's local routes (wrong token) and the health and metrics routes.
    for (const [method, template] of [['GET', '/local/api-keys'], ['PUT', '/local/limits'], ['POST', '/local/sql'], ['GET', '/metrics'], ['GET', '/health'], ['GET', '/docs/json']] as const) {
      routes.push({ method, template, query: [] });
    }
    expect(routes.length).toBeGreaterThanOrEqual(35);
    for (const route of routes) {
      await fc.assert(fc.asyncProperty(caseFor(route), check), { numRuns: RUNS, endOnFailure: true });
    }
    expect(await snapshotState()).toContain('"active_keys":');
  }, Math.max(120_000, RUNS * 3000));

  it('no 5xx for hostile Authorization headers and methods on any path', async () => {
    const header = fc.oneof(
      hostileString.map((s) => `Bearer ${s}`),
      fc.constantFrom('Bearer', 'Bearer ', 'bearer evk_', `Bearer ${'evk_'.padEnd(47, 'A')}`, `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${adminKey} extra`, `Bearer  ${adminKey}`),
      hostileString,
    );
    const arb = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
      path: fc.oneof(fc.constantFrom('/v1/jobs', '/v1/admin/limits', '/v1/evaluations', '/metrics', '/local/sql', '/v1/nowhere', '/health'), hostileString.map((s) => `/v1/${encode(s.slice(0, 200)) || 'x'}`)),
      auth: header,
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, path: p, auth }) => {
        const safe = auth.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
        await check({ method, url: p, headers: { authorization: safe } });
      }),
      { numRuns: RUNS * 5 },
    );
  }, Math.max(60_000, RUNS * 1000));

  it('still answers afterwards, and the admin key still works', async () => {
    const health = await server.api('GET', '/health');
    expect(health.status).toBe(200);
    const jobs = await server.api('GET', '/v1/jobs?limit=1', undefined, { authorization: `Bearer ${adminKey}` });
    expect(jobs.status).toBe(200);
    expect(({}) as Record<string, unknown>).not.toHaveProperty('polluted');
    expect(({}) as Record<string, unknown>).not.toHaveProperty('isAdmin');
  });
});
