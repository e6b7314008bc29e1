import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeMlflowServer, startFakeMlflowServer } from '../helpers/fake-mlflow-server.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, textPrompt } from '../helpers/eval-helpers.ts';
import { runCli } from '../helpers/processes.ts';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Secret hygiene: known secrets in the configuration (database password, Redis password, an API
 * key, METRICS_TOKEN, the MLflow token, an OpenAI key read from an environment variable); every
 * route driven with no key, a wrong key and the right one, with good and bad input, a run that
 * calls the (fake) OpenAI and MLflow servers, one that fails with the key echoed upstream, a 500,
 * and CLI failure paths. Then everything produced is searched for every secret: log lines, bodies
 * and headers of answers, health output, metrics, run files, database rows, MLflow requests, CLI
 * output.
 */

const SECRETS = {
  dbPassword: 'DbPw-s3cret-9f1e2d',
  redisPassword: 'RedisPw-s3cret-77aa',
  metricsToken: 'MetricsTok-s3cret-4c5d6e7f',
  mlflowToken: 'MlflowTok-s3cret-a1b2c3',
  openaiKey: 'sk-hygiene-s3cret-0a9b8c7d6e5f',
};
const OPENAI_ENV = 'HYGIENE_OPENAI_API_KEY';

let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let mlflow: FakeMlflowServer;
let apiKey = '';
const produced: Array<{ where: string; text: string }> = [];
const record = (where: string, value: unknown) => produced.push({ where, text: typeof value === 'string' ? value : JSON.stringify(value) });

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  if (!u.username) u.username = 'postgres';
  return u.toString();
}

beforeAll(async () => {
  process.env[OPENAI_ENV] = SECRETS.openaiKey;
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({ apiKey: SECRETS.openaiKey });
  mlflow = await startFakeMlflowServer({ token: SECRETS.mlflowToken });
  const env: Record<string, string> = {
    METRICS_TOKEN: SECRETS.metricsToken,
    // Redis has no password here: the probe fails its AUTH, the failure path we want.
    REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:6379`,
    MLFLOW_TRACKING_URI: mlflow.url,
    MLFLOW_TRACKING_TOKEN: SECRETS.mlflowToken,
    COMMIT_SHA: 'abc1234',
  };
  // The test PostgreSQL trusts local connections, so a password in the URL is accepted and ignored.
  if (TEST_DB === 'postgres') env.DATABASE_URL = withPassword(db.databaseUrl!, SECRETS.dbPassword);
  server = await startTestServer(db, env, {
    routes: async (app) => {
      app.get('/test/explode', async () => {
        throw new Error('kaboom: an unexpected bug');
      });
    },
  });
  const created = await server.api('POST', '/v1/admin/api-keys', { name: 'hygiene-admin', scopes: ['admin'] });
  expect(created.status).toBe(201);
  apiKey = created.body.key;
});

afterAll(async () => {
  await server?.close(2000);
  await openai?.close();
  await mlflow?.close();
  await db?.cleanup();
  delete process.env[OPENAI_ENV];
});

async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}, contentType = 'application/json') {
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': contentType } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  record(`${method} ${route} -> ${res.status} body`, text);
  record(`${method} ${route} -> ${res.status} headers`, [...res.headers.entries()]);
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed };
}

const auth = () => ({ authorization: `Bearer ${apiKey}` });

describe('secret hygiene', () => {
  it('drives every route and failure path, then finds no secret in anything produced', async () => {
    // A successful run through the OpenAI and MLflow fakes, and one whose upstream echoes the key in its error.
    await call('POST', '/v1/prompts', textPrompt('hygiene'), auth());
    const uploaded = await call('POST', '/v1/datasets', casesJsonl(3, 'hygiene'), auth(), 'application/x-ndjson');
    const snapshot = uploaded.body.data_snapshot_id;
    const provider = { type: 'openai', base_url: openai.url, api_key_env: OPENAI_ENV, backoff_base_ms: 10, max_attempts: 1 };
    const good = await call('POST', '/v1/evaluations', { prompt_version: 'hygiene@1', data_snapshot_id: snapshot, provider, model: 'gpt-test', seed: 1 }, auth());
    expect(good.status, JSON.stringify(good.body)).toBe(202);
    const goodRun = await waitForRunWithKey(good.body.run_id);
    record('good run', goodRun);
    // The secrets were really in use: the key reached the provider, the run reached MLflow.
    expect(goodRun.status, JSON.stringify(goodRun.error_message)).toBe('succeeded');
    expect(openai.requests.some((r) => r.headers.authorization === `Bearer ${SECRETS.openaiKey}`)).toBe(true);
    openai.script({ status: 401, body: { error: { message: `Incorrect API key provided: ${SECRETS.openaiKey}`, type: 'invalid_request_error' } } });
    const bad = await call('POST', '/v1/evaluations', { prompt_version: 'hygiene@1', data_snapshot_id: snapshot, provider, model: 'gpt-test', seed: 2, concurrency: 1 }, auth());
    expect(bad.status).toBe(202);
    const badRun = await waitForRunWithKey(bad.body.run_id);
    record('failing run', badRun);
    record('failing run results', (await call('GET', `/v1/evaluations/${bad.body.run_id}/results`, undefined, auth())).body);
    const job = await call('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 50 } }, auth());

    // Every documented route: without a key, with a wrong one, and with the right one on good and bad input.
    const doc = (await call('GET', '/docs/json')).body as { paths: Record<string, Record<string, unknown>> };
    const fill = (template: string, good: boolean) =>
      template.replace(/\{(\w+)\}/g, (_m, p: string) => {
        if (!good) return p === 'id' ? 'not-a-uuid%00' : '..%2F..%2Fetc';
        if (p === 'id') return template.startsWith('/v1/jobs') ? job.body.job_id : template.startsWith('/v1/datasets') ? snapshot : good ? goodRun.run_id : 'x';
        if (p === 'name') return template.includes('/files/') ? 'run_metadata.json' : template.includes('/limits/') ? 'rate.read_per_minute' : 'hygiene';
        if (p === 'version') return '1';
        if (p === 'ref') return 'hygiene@1';
        if (p === 'key') return 'no-such-key';
        return 'x';
      });
    let driven = 0;
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods).map((m) => m.toUpperCase())) {
        const body = method === 'GET' || method === 'DELETE' ? undefined : { nonsense: true, password: SECRETS.dbPassword.slice(0, 4) };
        await call(method, fill(template, true), body);
        await call(method, fill(template, true), body, { authorization: 'Bearer evk_wrongwrongwrongwrongwrongwrongwrongwrongwro' });
        await call(method, fill(template, true), body, { authorization: `Bearer ${SECRETS.metricsToken}` });
        await call(method, fill(template, true), body, auth());
        if (method === 'GET') await call(method, `${fill(template, false)}?limit=abc&since=%00&cursor=${SECRETS.dbPassword.slice(0, 3)}`, undefined, auth());
        else await call(method, fill(template, false), '{"broken json', auth());
        driven += 1;
      }
    }
    expect(driven).toBeGreaterThanOrEqual(20);

    // Failure paths: a 500, an unknown route, oversized and malformed bodies, a wrong metrics token.
    const exploded = await call('GET', '/test/explode', undefined, auth());
    expect(exploded.status).toBe(500);
    await call('GET', '/v1/nowhere', undefined, auth());
    await call('POST', '/v1/jobs', JSON.stringify({ type: 'noop', payload: { pad: 'x'.repeat(2_000_000) } }), auth());
    await call('GET', '/metrics', undefined, { authorization: 'Bearer nope' });
    const metrics = await call('GET', '/metrics', undefined, { authorization: `Bearer ${SECRETS.metricsToken}` });
    expect(metrics.status).toBe(200);
    await call('GET', '/health/detailed');
    // Redis unreachable, its password in the URL: the failure as /health/detailed and the logs show it.
    const otherDb = await createTestDatabase();
    const deadRedis = await startTestServer(otherDb, { REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:1`, AUTH_DISABLED: 'true' });
    try {
      const res = await fetch(`${deadRedis.url}/health/detailed`);
      const text = await res.text();
      expect(JSON.parse(text).components.redis.status).not.toBe('healthy');
      record('health with Redis down', text);
      record('rate-limited request with Redis down', await (await fetch(`${deadRedis.url}/v1/jobs`)).text());
      for (const line of deadRedis.logs) record('log line (Redis down)', line);
    } finally {
      await deadRedis.close(500);
      await otherDb.cleanup();
    }
    await call('GET', '/health');
    await call('GET', '/docs/json');

    // The database, the run folders and what MLflow received.
    for (const table of ['jobs', 'evaluation_runs', 'api_keys', 'runtime_limits', 'prompts', 'dataset_snapshots'] as const) {
      record(`table ${table}`, await server.database.db.selectFrom(table).selectAll().execute());
    }
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const file = path.join(dir, name);
        if (statSync(file).isDirectory()) walk(file);
        else if (statSync(file).size < 5_000_000) record(`file ${path.relative(db.dataDir, file)}`, readFileSync(file, 'utf8'));
      }
    };
    walk(path.join(db.dataDir, 'runs'));
    expect(mlflow.requests.length).toBeGreaterThan(0);
    for (const r of mlflow.requests) record(`mlflow ${r.method} ${r.path}`, { query: r.query, body: r.body });
    for (const [name, bytes] of mlflow.artifacts) record(`mlflow artifact ${name}`, bytes.toString('utf8'));
    for (const run of mlflow.runs.values()) record('mlflow run', { params: [...run.params], tags: [...run.tags], metrics: run.metrics });

    // CLI: configuration, keys, limits, and connection failures with a password in the URL.
    const badUrl = withPassword('postgresql://postgres@127.0.0.1:1/nowhere', SECRETS.dbPassword);
    const cliEnv = { ...db.env, ...(TEST_DB === 'postgres' ? { DATABASE_URL: withPassword(db.databaseUrl!, SECRETS.dbPassword) } : {}), METRICS_TOKEN: SECRETS.metricsToken, REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:6379`, MLFLOW_TRACKING_URI: mlflow.url, MLFLOW_TRACKING_TOKEN: SECRETS.mlflowToken };
    for (const args of [['config'], ['apikey', 'list', '--all'], ['limits', 'show'], ['migrate', 'current']]) {
      const r = await runCli(args, cliEnv);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      record(`cli ${args.join(' ')}`, r.stdout + r.stderr);
    }
    for (const args of [['migrate', 'current'], ['apikey', 'list'], ['sql', 'SELECT 1']]) {
      const r = await runCli(args, { ...cliEnv, DATABASE_URL: badUrl });
      expect(r.code).not.toBe(0);
      record(`cli ${args.join(' ')} (unreachable database)`, r.stdout + r.stderr);
    }
    const tooShort = await runCli(['config'], { ...cliEnv, METRICS_TOKEN: 'MetricsTok-s3c' });
    expect(tooShort.code).toBe(78);
    expect(tooShort.stderr).toMatch(/METRICS_TOKEN: accepts a token of at least 16 characters/);
    record('cli config (bad METRICS_TOKEN)', tooShort.stdout + tooShort.stderr);

    // The logs last, once every request above has written its line.
    await new Promise((r) => setTimeout(r, 200));
    expect(server.logs.length).toBeGreaterThan(100);
    for (const line of server.logs) record('log line', line);

    const secrets: Record<string, string> = { ...SECRETS, apiKeySecretPart: apiKey.slice(12) };
    const leaksIn = (outputs: typeof produced) => {
      const leaks: string[] = [];
      for (const { where, text } of outputs) {
        for (const [name, secret] of Object.entries(secrets)) {
          if (text.includes(secret)) leaks.push(`${name} in ${where}: …${text.slice(Math.max(0, text.indexOf(secret) - 80), text.indexOf(secret) + secret.length + 20)}…`);
        }
      }
      return leaks;
    };
    // The search itself finds a secret where there is one.
    expect(leaksIn([{ where: 'canary', text: JSON.stringify({ a: `x${SECRETS.openaiKey}y` }) }])).toHaveLength(1);
    expect(leaksIn(produced)).toEqual([]);
    console.log(`secret hygiene: ${produced.length} outputs searched for ${Object.keys(secrets).length} secrets (${driven} documented routes driven 5 ways each), none found`);
  });
});

async function waitForRunWithKey(runId: string): Promise<any> {
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    const res = await call('GET', `/v1/evaluations/${runId}`, undefined, auth());
    if (['succeeded', 'failed', 'cancelled'].includes(res.body.status)) return res.body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${runId} did not finish`);
}
