import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnServer } from '../helpers/processes.ts';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * API keys and scopes: open on loopback without a key, on as soon as one exists; 401/403 saying
 * why; the scope of every documented route; revocation from the next request; the /metrics token;
 * refusing to start beyond loopback without a key; audit lines that never hold a key.
 */

let db: TestDatabase;
let server: TestServer;
const keys = { admin: '', reader: '', jobs: '', evals: '', allButAdmin: '', writeOnly: '' };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { AUTH_CACHE_TTL_MS: '60000' });
});

afterAll(async () => {
  await server?.close(1000);
  await db?.cleanup();
});

async function createKey(name: string, scopes: string[], as: string = keys.admin): Promise<string> {
  const res = await server.api('POST', '/v1/admin/api-keys', { name, scopes }, as ? bearer(as) : {});
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.key).toMatch(/^evk_[A-Za-z0-9_-]{43}$/);
  expect(res.body.prefix).toBe(res.body.key.slice(0, 12));
  return res.body.key;
}

describe('a loopback server with no key', () => {
  it('runs open and says so in its start-up log', async () => {
    const line = server.logs.find((l) => l.auth === 'open');
    expect(line?.msg).toMatch(/runs open to this machine \(no authentication, no rate limits\)/);
    expect((await server.api('GET', '/v1/jobs')).status).toBe(200);
    expect((await server.api('POST', '/v1/jobs', { type: 'noop' })).status).toBe(202);
  });
});

describe('with keys', () => {
  beforeAll(async () => {
    // The first key is made on the open server; from then on authentication is on.
    keys.admin = await createKey('ops-admin', ['admin'], '');
    keys.reader = await createKey('reader', ['read']);
    keys.jobs = await createKey('job-writer', ['read', 'jobs:write']);
    keys.evals = await createKey('eval-writer', ['read', 'evals:write']);
    keys.allButAdmin = await createKey('everything-but-admin', ['read', 'jobs:write', 'evals:write']);
    keys.writeOnly = await createKey('write-only', ['jobs:write', 'evals:write']);
  });

  it('stores only a SHA-256 of each key, with its prefix in clear', async () => {
    const rows = await server.database.db.selectFrom('api_keys').selectAll().execute();
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Object.values(keys)).not.toContain(row.key_hash);
      for (const value of Object.values(row)) for (const key of Object.values(keys)) expect(String(value)).not.toContain(key);
    }
  });

  it('401 names what is wrong: missing, malformed, unknown, revoked', async () => {
    const missing = await server.api('GET', '/v1/jobs');
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'missing' } });
    expect(missing.body.error.message).toMatch(/Authorization: Bearer/);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');

    const malformed = await server.api('GET', '/v1/jobs', undefined, { authorization: `Basic ${keys.reader}` });
    expect(malformed.status).toBe(401);
    expect(malformed.body.error.details.reason).toBe('malformed');

    const unknown = await server.api('GET', '/v1/jobs', undefined, bearer(`evk_${'A'.repeat(43)}`));
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toMatchObject({ message: 'unknown API key', details: { reason: 'unknown' } });
    const garbage = await server.api('GET', '/v1/jobs', undefined, bearer('not-a-key'));
    expect(garbage.status).toBe(401);

    const doomed = await createKey('doomed', ['read']);
    expect((await server.api('GET', '/v1/jobs', undefined, bearer(doomed))).status).toBe(200);
    expect((await server.api('POST', '/v1/admin/api-keys/doomed/revoke', undefined, bearer(keys.admin))).status).toBe(200);
    const revoked = await server.api('GET', '/v1/jobs', undefined, bearer(doomed));
    expect(revoked.status).toBe(401);
    expect(revoked.body.error).toMatchObject({ message: 'this API key has been revoked', details: { reason: 'revoked' } });
  });

  it('keeps /health, /health/detailed, /docs and /metrics (no METRICS_TOKEN) open', async () => {
    for (const route of ['/health', '/health/detailed', '/docs/json', '/metrics']) {
      const res = await server.api('GET', route);
      expect(res.status, route).toBe(200);
    }
  });

  it('gives every documented route the scope it needs: 403 naming it without, through with it', async () => {
    const doc = (await server.api('GET', '/docs/json', undefined, bearer(keys.reader))).body as { paths: Record<string, Record<string, unknown>> };
    const explicit: Record<string, string> = {
      'POST /v1/jobs': 'jobs:write',
      'POST /v1/jobs/batch': 'jobs:write',
      'POST /v1/prompts': 'evals:write',
      'POST /v1/datasets': 'evals:write',
      'POST /v1/evaluations': 'evals:write',
      'POST /v1/evaluations/{id}/cancel': 'evals:write',
      'POST /v1/evaluations/{id}/rerun': 'evals:write',
      'GET /v1/admin/api-keys': 'admin',
      'POST /v1/admin/api-keys': 'admin',
      'POST /v1/admin/api-keys/{key}/revoke': 'admin',
      'GET /v1/admin/limits': 'admin',
      'PUT /v1/admin/limits': 'admin',
      'DELETE /v1/admin/limits/{name}': 'admin',
    };
    const publicRoutes = new Set(['GET /health', 'GET /health/detailed', 'GET /metrics']);
    // Acting on a job needs the scope of its kind, known once the job is read (job-scopes.test.ts):
    // any valid key reaches the lookup, and a job that does not exist is a 404.
    const byJobKind = new Set(['POST /v1/jobs/{id}/cancel', 'POST /v1/jobs/{id}/retry']);
    const keyWithout: Record<string, string> = { read: keys.writeOnly!, 'jobs:write': keys.evals!, 'evals:write': keys.jobs!, admin: keys.allButAdmin! };
    const keyWith: Record<string, string> = { read: keys.reader!, 'jobs:write': keys.jobs!, 'evals:write': keys.evals!, admin: keys.admin! };
    const seen: string[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods).map((m) => m.toUpperCase())) {
        const route = `${method} ${template}`;
        if (publicRoutes.has(route)) continue;
        if (byJobKind.has(route)) {
          const path = template.replace('{id}', randomUUID());
          expect((await server.api(method, path)).status, `${route} without a key`).toBe(401);
          expect((await server.api(method, path, undefined, bearer(keys.reader!))).status, `${route} on no job`).toBe(404);
          seen.push(`${route} -> scope of the job's kind`);
          continue;
        }
        const needed = explicit[route] ?? (method === 'GET' ? 'read' : undefined);
        expect(needed, `${route} has no expected scope in this test`).toBeDefined();
        seen.push(`${route} -> ${needed}`);
        const url = template.replace(/\{(\w+)\}/g, (_m, p: string) => (p === 'id' ? randomUUID() : p === 'version' ? '1' : 'no-such-thing'));
        const body = method === 'GET' || method === 'DELETE' ? undefined : {};
        const denied = await server.api(method, url, body, bearer(keyWithout[needed!]!));
        expect(denied.status, `${route} without ${needed}`).toBe(403);
        expect(denied.body.error.message).toContain(`needs scope "${needed}"`);
        expect(denied.body.error.details.needed).toBe(needed);
        const allowed = await server.api(method, url, body, bearer(keyWith[needed!]!));
        expect([401, 403], `${route} with ${needed}: ${JSON.stringify(allowed.body)}`).not.toContain(allowed.status);
        // admin implies every scope.
        const asAdmin = await server.api(method, url, body, bearer(keys.admin!));
        expect([401, 403], `${route} as admin`).not.toContain(asAdmin.status);
      }
    }
    expect(seen.length).toBeGreaterThanOrEqual(20);
    console.log(`scopes checked for ${seen.length} routes:\n  ${seen.join('\n  ')}`);
  });

  it('an unknown route needs a valid key before it is a 404', async () => {
    expect((await server.api('GET', '/v1/nothing-here')).status).toBe(401);
    expect((await server.api('GET', '/v1/nothing-here', undefined, bearer(keys.reader))).status).toBe(404);
  });

  it('writes audit lines for key creation and revocation, job cancellation and limit changes, with the key name and never the key', async () => {
    const job = await server.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 10_000 }, run_at: new Date(Date.now() + 60_000).toISOString() }, bearer(keys.jobs));
    expect(job.status).toBe(202);
    expect((await server.api('POST', `/v1/jobs/${job.body.job_id}/cancel`, undefined, bearer(keys.jobs))).status).toBe(202);
    expect((await server.api('PUT', '/v1/admin/limits', { 'rate.read_per_minute': 2999 }, bearer(keys.admin))).status).toBe(200);
    expect((await server.api('DELETE', '/v1/admin/limits/rate.read_per_minute', undefined, bearer(keys.admin))).status).toBe(200);

    const audit = server.logs.filter((l) => typeof l.audit === 'string');
    const find = (event: string, pred: (l: Record<string, unknown>) => boolean = () => true) => audit.find((l) => l.audit === event && pred(l));
    expect(find('api_key.created', (l) => l.key_name === 'reader')).toMatchObject({ actor: 'key:ops-admin', scopes: ['read'] });
    expect(find('api_key.created', (l) => l.key_name === 'ops-admin')).toMatchObject({ actor: 'anonymous' });
    expect(find('api_key.revoked', (l) => l.key_name === 'doomed')).toMatchObject({ actor: 'key:ops-admin' });
    expect(find('job.cancelled', (l) => l.id === job.body.job_id)).toMatchObject({ actor: 'key:job-writer' });
    expect(find('limits.changed')).toMatchObject({ actor: 'key:ops-admin', changes: [{ name: 'rate.read_per_minute', from: 3000, to: 2999 }] });
    expect(find('limits.reset')).toMatchObject({ actor: 'key:ops-admin', names: ['rate.read_per_minute'] });
    const everything = JSON.stringify(server.logs);
    for (const key of Object.values(keys)) expect(everything).not.toContain(key.slice(12));
  });

  it('a revocation by the CLI is refused on the next request; a lost notification is bounded by AUTH_CACHE_TTL_MS', async () => {
    const key = await createKey('cli-revoked', ['read']);
    expect((await server.api('GET', '/v1/jobs', undefined, bearer(key))).status).toBe(200);
    const revoked = await runCli(['apikey', 'revoke', 'cli-revoked'], db.env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain('revoked API key "cli-revoked"');
    expect((await server.api('GET', '/v1/jobs', undefined, bearer(key))).status).toBe(401);
  });
});

describe('the CLI: apikey create/list/revoke', () => {
  it(`works ${TEST_DB === 'pglite' ? 'through the server that holds the embedded database' : 'on PostgreSQL directly'}, printing the key once`, async () => {
    const created = await runCli(['apikey', 'create', '--name', 'from-cli', '--scopes', 'read,jobs:write'], db.env);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^evk_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/created API key "from-cli" .*scopes read,jobs:write/);
    expect(created.stderr).toMatch(/not shown again/);
    expect((await server.api('POST', '/v1/jobs', { type: 'noop' }, bearer(key))).status).toBe(202);

    const list = await runCli(['apikey', 'list'], db.env);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('from-cli');
    expect(list.stdout).toContain(`${key.slice(0, 12)}…`);
    expect(list.stdout).not.toContain(key.slice(12));
    const json = JSON.parse((await runCli(['apikey', 'list', '--all', '--json'], db.env)).stdout) as Array<{ name: string; revoked_at: string | null }>;
    expect(json.find((k) => k.name === 'cli-revoked')?.revoked_at).toEqual(expect.any(String));

    const bad = await runCli(['apikey', 'create', '--name', 'x', '--scopes', 'read,root'], db.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"root" is not a scope; use read, jobs:write, evals:write, admin/);
    const duplicate = await runCli(['apikey', 'create', '--name', 'from-cli', '--scopes', 'read'], db.env);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/an active key named "from-cli" exists/);
    const missing = await runCli(['apikey', 'revoke', 'no-such-key'], db.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/active API key named "no-such-key" does not exist/);

    if (TEST_DB === 'postgres') {
      // Directly on PostgreSQL, the audit line is this command's (stderr); through the server, the server's.
      expect(created.stderr).toMatch(/"audit":"api_key.created".*"key_name":"from-cli"/);
    } else {
      expect(server.logs.find((l) => l.audit === 'api_key.created' && l.key_name === 'from-cli')).toMatchObject({ actor: expect.stringMatching(/^cli:/) });
    }
    expect(created.stderr).not.toContain(key.slice(12));
  });
});

describe('/metrics behind METRICS_TOKEN', () => {
  it('answers 401 without the token and 200 with it; API keys do not open it', async () => {
    const d = await createTestDatabase();
    const s = await startTestServer(d, { METRICS_TOKEN: 'metrics-token-0123456789abcdef' });
    try {
      const none = await s.api('GET', '/metrics');
      expect(none.status).toBe(401);
      expect(none.body.error.message).toMatch(/METRICS_TOKEN/);
      expect((await s.api('GET', '/metrics', undefined, bearer('metrics-token-0123456789abcdeX'))).status).toBe(401);
      const ok = await s.api('GET', '/metrics', undefined, bearer('metrics-token-0123456789abcdef'));
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('http_requests_total');
      expect((await s.api('GET', '/health')).status).toBe(200);
    } finally {
      await s.close(500);
      await d.cleanup();
    }
  });
});

describe('exposure beyond loopback', () => {
  it('refuses to start on a non-loopback HOST with no key, saying why; starts with AUTH_DISABLED=true (and warns), or once a key exists', async () => {
    const d = await createTestDatabase();
    try {
      const refused = await runCli(['serve'], { ...d.env, HOST: '0.0.0.0', PORT: '0' }, 30_000);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/refusing to start: HOST=0\.0\.0\.0 is reachable beyond this machine and no API key exists.*evalops apikey create.*AUTH_DISABLED=true/);

      const open = await spawnServer({ ...d.env, HOST: '0.0.0.0', AUTH_DISABLED: 'true' });
      expect(open.logs.find((l) => l.auth === 'disabled')).toMatchObject({ level: 'warn', msg: expect.stringMatching(/AUTH_DISABLED=true/) });
      expect(await open.stop()).toBe(0);

      const created = await runCli(['apikey', 'create', '--name', 'first', '--scopes', 'read'], d.env);
      expect(created.code, created.stderr).toBe(0);
      const secured = await spawnServer({ ...d.env, HOST: '0.0.0.0' });
      try {
        expect(secured.logs.find((l) => l.auth === 'keys')).toMatchObject({ active_keys: 1 });
        const url = secured.url.replace('0.0.0.0', '127.0.0.1');
        expect((await fetch(`${url}/v1/jobs`)).status).toBe(401);
        expect((await fetch(`${url}/v1/jobs`, { headers: bearer(created.stdout.trim()) })).status).toBe(200);
        expect((await fetch(`${url}/health`)).status).toBe(200);
      } finally {
        expect(await secured.stop()).toBe(0);
      }
    } finally {
      await d.cleanup();
    }
  });
});
