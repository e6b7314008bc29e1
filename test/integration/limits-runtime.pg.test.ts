import { afterAll, describe, expect, it } from 'vitest';
import { runCli, spawnServer, waitFor } from '../helpers/processes.ts';
import { createTestDatabase } from '../helpers/test-database.ts';

/**
 * Runtime limits across API processes: `evalops limits set` on the PostgreSQL database is applied by
 * two running `evalops serve` processes without a restart. PGlite admits one process, so this runs on
 * PostgreSQL only (the rest of the limits: limits.test.ts).
 */

const owned: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const o of owned.reverse()) await o.close();
});

describe('runtime limits reach every API process (PostgreSQL)', () => {
  it('`evalops limits set` on the database is applied by two running processes within seconds', async () => {
    const db = await createTestDatabase({ backend: 'postgres' });
    owned.push({ close: () => db.cleanup() });
    const servers = [await spawnServer({ ...db.env, AUTH_DISABLED: 'true' }), await spawnServer({ ...db.env, AUTH_DISABLED: 'true' })];
    owned.push(...servers.map((s) => ({ close: async () => void (await s.stop()) })));
    const post = (url: string, bytes: number) =>
      fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'noop', payload: { pad: 'x'.repeat(bytes) } }) }).then((r) => r.status);
    for (const s of servers) expect(await post(s.url, 500)).toBe(202);
    const started = Date.now();
    expect((await runCli(['limits', 'set', 'job.payload_bytes=100'], db.env)).code).toBe(0);
    for (const s of servers) await waitFor('the new payload limit', async () => (await post(s.url, 500)) === 413, 10_000, 20);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(5000);
    console.log(`runtime limit applied by 2 processes ${elapsed} ms after \`evalops limits set\` was started (CLI start-up included)`);
  });
});
