import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runCli, spawnServer, waitFor } from '../helpers/processes.ts';
import { createTestDatabase } from '../helpers/test-database.ts';

/**
 * API key revocation across API processes: two `evalops serve` processes on one PostgreSQL database
 * learn of a key revoked by the CLI through NOTIFY, and without it within AUTH_CACHE_TTL_MS. PGlite
 * admits one process, so this runs on PostgreSQL only (the rest of access control: auth.test.ts).
 */

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('revocation in every API process (PostgreSQL)', () => {
  it('two API processes refuse a key revoked by the CLI from their next request; a lost NOTIFY is bounded by AUTH_CACHE_TTL_MS', async () => {
    const d = await createTestDatabase({ backend: 'postgres' });
    const servers = [await spawnServer({ ...d.env, AUTH_CACHE_TTL_MS: '1500' }), await spawnServer({ ...d.env, AUTH_CACHE_TTL_MS: '1500' })];
    try {
      const admin = (await runCli(['apikey', 'create', '--name', 'ops', '--scopes', 'admin'], d.env)).stdout.trim();
      const user = (await runCli(['apikey', 'create', '--name', 'user', '--scopes', 'read'], d.env)).stdout.trim();
      // A loopback server with no key left runs open again: keep one.
      expect((await runCli(['apikey', 'create', '--name', 'keeper', '--scopes', 'read'], d.env)).code).toBe(0);
      const get = (s: (typeof servers)[number], key: string) => fetch(`${s.url}/v1/jobs?limit=1`, { headers: bearer(key) }).then((r) => r.status);
      // Both processes learn of the keys (NOTIFY) and cache them.
      for (const s of servers) await waitFor('the new keys to be accepted', async () => (await get(s, user)) === 200 && (await get(s, admin)) === 200);

      const revoked = await runCli(['apikey', 'revoke', 'user'], d.env);
      expect(revoked.code, revoked.stderr).toBe(0);
      for (const s of servers) expect(await get(s, user)).toBe(401);
      for (const s of servers) expect(await get(s, admin)).toBe(200);

      // Without the notification (trigger disabled), the cached verdict lives at most AUTH_CACHE_TTL_MS.
      const client = new pg.Client({ connectionString: d.databaseUrl });
      await client.connect();
      try {
        await client.query('ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify');
        await client.query("UPDATE api_keys SET revoked_at = now() WHERE name = 'ops'");
        const started = Date.now();
        for (const s of servers) await waitFor('the cached key to expire', async () => (await get(s, admin)) === 401, 5000, 50);
        const elapsed = Date.now() - started;
        expect(elapsed).toBeLessThan(1500 + 1000);
        await client.query('ALTER TABLE api_keys ENABLE TRIGGER api_keys_notify');
      } finally {
        await client.end();
      }
    } finally {
      for (const s of servers) await s.stop();
      await d.cleanup();
    }
  });
});
