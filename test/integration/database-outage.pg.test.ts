import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/processes.ts';

let db: TestDatabase;
let proxy: TcpProxy;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  proxy = await startTcpProxy(5432);
  const url = new URL(db.databaseUrl!);
  url.port = String(proxy.port);
  server = await startTestServer(db, { DATABASE_URL: url.toString(), HEALTH_PROBE_TIMEOUT_MS: '1500' });
});

afterAll(async () => {
  proxy?.resume();
  await server?.close(1000);
  await proxy?.close();
  await db?.cleanup();
});

async function timedHealth(): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const res = await server.api('GET', '/health/detailed');
  return { ...res, ms: Date.now() - started };
}

async function runNoop(): Promise<string> {
  const { body } = await server.api('POST', '/v1/jobs', { type: 'noop' });
  await waitFor('the noop job to succeed', async () => (await server.api('GET', `/v1/jobs/${body.job_id}`)).body.status === 'succeeded', 30_000);
  return body.job_id;
}

describe('the database hangs, vanishes and comes back', () => {
  it('a hung database makes /health/detailed unhealthy within the probe timeout, never a hung request', async () => {
    expect((await timedHealth()).body.status).toBe('healthy');
    proxy.pause();
    const hung = await timedHealth();
    expect(hung.status, JSON.stringify(hung.body)).toBe(503);
    expect(hung.body.status).toBe('unhealthy');
    expect(hung.body.components.database.status, JSON.stringify(hung.body.components)).toBe('unhealthy');
    expect(hung.body.components.database.message).toMatch(/did not answer within 1500 ms/);
    // The answer is bounded by the probe timeout, not by the database: generous slack for a loaded machine.
    expect(hung.ms).toBeLessThan(10_000);
    const live = await server.api('GET', '/health');
    expect(live.status).toBe(200);

    proxy.resume();
    await waitFor('health to recover after the database answers again', async () => (await timedHealth()).body.status === 'healthy', 30_000, 200);
    await runNoop();
  });

  it('a vanished database answers 503 with an error_id, and everything recovers by itself with no restart', async () => {
    proxy.cut();
    const health = await timedHealth();
    expect(health.status).toBe(503);
    expect(health.body.components.database.message).toMatch(/cannot reach the database/);
    const list = await server.api('GET', '/v1/jobs');
    expect(list.status).toBe(503);
    expect(list.body.error.code).toBe('UNAVAILABLE');
    const errorId = list.body.error.error_id;
    expect(errorId).toBeTruthy();
    expect(server.logs.filter((l) => l.error_id === errorId)).toHaveLength(1);

    proxy.resume();
    await waitFor('health to recover', async () => (await timedHealth()).body.status === 'healthy', 30_000, 200);
    const id = await runNoop();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
