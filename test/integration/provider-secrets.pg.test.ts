import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeMlflowServer, startFakeMlflowServer } from '../helpers/fake-mlflow-server.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { runCli, type ServerProcess, spawnServer } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * An `evals:write` caller against a real server process whose environment holds the server's own
 * secrets: a listener on 127.0.0.1 records every request it gets, and none of those secrets may
 * reach it, through `api_key_env`, `{{env.NAME}}` headers, an `http` provider or an `llm_judge`.
 * The same server is the subject of the URL-redaction checks (a `?password=` in DATABASE_URL).
 * PostgreSQL only: DATABASE_URL must be set for it to be a secret worth stealing.
 */

const DB_PASSWORD = 'db-pass-7c1e9a44f0';
const METRICS_TOKEN = 'metrics-token-51d0b8e2aa93';
const MLFLOW_TOKEN = 'mlflow-token-e84f1c07b2d6';
const OTHER_KEY = 'sk-other-provider-90a7c3e1f5';
const ALLOWED_KEY = 'sk-allowed-provider-2b8d6f4a1c';
const SECRETS = [DB_PASSWORD, METRICS_TOKEN, MLFLOW_TOKEN, OTHER_KEY];

let db: TestDatabase;
let listener: FakeOpenAIServer;
let mlflow: FakeMlflowServer;
let server: ServerProcess;
let env: Record<string, string>;
let prompt: string;
let snapshot: string;

beforeAll(async () => {
  db = await createTestDatabase();
  listener = await startFakeOpenAIServer({});
  mlflow = await startFakeMlflowServer();
  env = {
    MLFLOW_TRACKING_URI: mlflow.url,
    ...db.env,
    DATABASE_URL: `${db.databaseUrl}?password=${DB_PASSWORD}`,
    METRICS_TOKEN,
    MLFLOW_TRACKING_TOKEN: MLFLOW_TOKEN,
    OTHER_PROVIDER_API_KEY: OTHER_KEY,
    ALLOWED_PROVIDER_API_KEY: ALLOWED_KEY,
    PROVIDER_ENV_ALLOWLIST: 'ALLOWED_PROVIDER_API_KEY',
  };
  server = await spawnServer(env);
  prompt = (await request(server.url, 'POST', '/v1/prompts', textPrompt('leak'))).body.prompt_version;
  snapshot = (await uploadDataset(server.url, casesJsonl(2))).body.data_snapshot_id;
});

afterAll(async () => {
  await server?.stop();
  await listener?.close();
  await mlflow?.close();
  await db?.cleanup();
});

const received = () => JSON.stringify(listener.requests);
const runCount = async () => (await request(server.url, 'GET', '/v1/evaluations?limit=200')).body.runs.length;

describe('provider environment allowlist (finding 1)', () => {
  const secretNames = ['DATABASE_URL', 'METRICS_TOKEN', 'MLFLOW_TRACKING_TOKEN', 'OTHER_PROVIDER_API_KEY'];

  it('refuses api_key_env, {{env.NAME}} headers, http and llm_judge providers naming a server secret with 422, creating no run', async () => {
    const before = await runCount();
    for (const name of secretNames) {
      const specs = [
        { provider: { type: 'openai', base_url: listener.url, api_key_env: name }, model: 'm' },
        { provider: { type: 'openai', base_url: listener.url, headers: { 'x-stolen': `{{env.${name}}}` } }, model: 'm' },
        { provider: { type: 'http', url: `${listener.url}/chat/completions`, body_template: { p: '{{prompt}}' }, response_path: 'choices.0.message.content', headers: { authorization: `Bearer {{env.${name}}}` } }, model: 'm' },
        {
          provider: 'echo',
          scorers: [{ name: 'judge', type: 'llm_judge', model: 'm', provider: { type: 'openai', base_url: listener.url, api_key_env: name } }],
        },
      ];
      for (const spec of specs) {
        const res = await request(server.url, 'POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, ...spec });
        expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(422);
        expect(res.body.error.code).toBe('NOT_ALLOWED');
        expect(res.body.error.message).toContain(name);
        expect(res.body.error.message).toContain('PROVIDER_ENV_ALLOWLIST');
      }
    }
    expect(await runCount()).toBe(before);
    for (const secret of SECRETS) expect(received()).not.toContain(secret);
    expect(listener.requests).toHaveLength(0);
  });

  it('sends the allowed key, and only it, to an allowed provider', async () => {
    const res = await request(server.url, 'POST', '/v1/evaluations', {
      prompt_version: prompt,
      data_snapshot_id: snapshot,
      provider: { type: 'openai', base_url: listener.url, api_key_env: 'ALLOWED_PROVIDER_API_KEY' },
      model: 'm',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const run = await waitForRun(server.url, res.body.run_id);
    expect(run.status, run.error_message).toBe('succeeded');
    expect(received()).toContain(ALLOWED_KEY);
    for (const secret of SECRETS) expect(received()).not.toContain(secret);
  });
});

describe('URLs shown without their secrets (finding 7)', () => {
  it('/health/detailed shows an anonymous caller no connection string', async () => {
    const res = await request(server.url, 'GET', '/health/detailed');
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(DB_PASSWORD);
    expect(res.body.components.database.details.location).toBeUndefined();
    expect(res.body.components.database.details.kind).toBe('postgres');
  });

  it('no log line of the server holds the password given as ?password= in DATABASE_URL', () => {
    const lines = JSON.stringify(server.logs);
    expect(lines).toContain('evalops is listening');
    expect(lines).not.toContain(DB_PASSWORD);
  });

  it('`evalops config` masks a ?password= query parameter', async () => {
    const out = await runCli(['config'], env);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('DATABASE_URL');
    expect(out.stdout + out.stderr).not.toContain(DB_PASSWORD);
  });

  it('GET /v1/evaluations/:id, the run list and run_metadata.json hide credentials given in a provider base_url', async () => {
    const creds = 'urlpass-3a9f0c';
    const base = new URL(listener.url);
    const withCreds = `${base.protocol}//svc:${creds}@${base.host}${base.pathname}?api_key=qk-${creds}`;
    const res = await request(server.url, 'POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, provider: { type: 'openai', base_url: withCreds }, model: 'm' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(JSON.stringify(res.body)).not.toContain(creds);
    const run = await waitForRun(server.url, res.body.run_id);
    expect(run.status, run.error_message).toBe('succeeded');
    expect(JSON.stringify(run)).not.toContain(creds);
    expect(JSON.stringify((await request(server.url, 'GET', '/v1/evaluations?limit=200')).body)).not.toContain(creds);
    const metadata = readFileSync(path.join(run.run_dir, 'run_metadata.json'), 'utf8');
    expect(metadata).toContain(base.host);
    expect(metadata).not.toContain(creds);
    // Published to MLflow: params come from run_metadata, which went up as an artifact too.
    const published = [...mlflow.runs.values()].map((r) => JSON.stringify([...r.params])).join('\n');
    expect(published).toContain(base.host);
    expect(published).not.toContain(creds);
    expect([...mlflow.artifacts.values()].map((b) => b.toString('utf8')).join('\n')).not.toContain(creds);
  });

  // Last: once a key exists the server stops running open.
  it('/health/detailed names the database, redacted, to a caller with a key that can read', async () => {
    const created = await request(server.url, 'POST', '/v1/admin/api-keys', { name: 'health-reader', scopes: ['read'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await fetch(`${server.url}/health/detailed`, { headers: { authorization: `Bearer ${created.body.key}` }, signal: AbortSignal.timeout(15_000) });
    const body = (await res.json()) as { components: { database: { details: { location?: string } } } };
    expect(body.components.database.details.location).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:5432\/evalops_t_[0-9a-f]+\?password=\*\*\*$/);
    expect(JSON.stringify(body)).not.toContain(DB_PASSWORD);
    const anonymous = await request(server.url, 'GET', '/health/detailed');
    expect(anonymous.body.components.database.details.location).toBeUndefined();
    const wrong = await fetch(`${server.url}/health/detailed`, { headers: { authorization: 'Bearer evk_not-a-key' }, signal: AbortSignal.timeout(15_000) });
    expect(((await wrong.json()) as { components: { database: { details: { location?: string } } } }).components.database.details.location).toBeUndefined();
  });
});
