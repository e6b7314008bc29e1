import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/eval-helpers.ts';
import { runCli, type ServerProcess, spawnServer, waitFor } from '../helpers/processes.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * The availability SLI adds up across API processes: two `evalops serve` processes on one
 * PostgreSQL database each flush their own request counts, one of them through a database outage
 * (its 503 answers are kept in memory and written when the database is back), and `evalops slo`
 * and `GET /v1/slo` on either process show the sum.
 */

let db: TestDatabase;
let proxy: TcpProxy;
let first: ServerProcess | undefined;
let second: ServerProcess | undefined;

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  proxy = await startTcpProxy(5432);
  const viaProxy = new URL(db.databaseUrl!);
  viaProxy.port = String(proxy.port);
  const env = { ...db.env, SLI_FLUSH_MS: '200', HEALTH_PROBE_TIMEOUT_MS: '500', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' };
  [first, second] = await Promise.all([spawnServer(env), spawnServer({ ...env, DATABASE_URL: viaProxy.toString() })]);
});

afterAll(async () => {
  proxy?.resume();
  await Promise.all([first?.stop('SIGTERM', 15_000), second?.stop('SIGTERM', 15_000)]);
  await proxy?.close();
  await db?.cleanup();
});

describe('request counts of two API processes', () => {
  it('add up in evalops slo, including the 5xx one process answered while its database was away', async () => {
    for (let i = 0; i < 20; i++) expect((await request(first!.url, 'GET', '/v1/jobs')).status).toBe(200);
    for (let i = 0; i < 30; i++) expect((await request(second!.url, 'GET', '/v1/jobs')).status).toBe(200);
    proxy.cut();
    try {
      for (let i = 0; i < 10; i++) expect((await request(second!.url, 'GET', '/v1/jobs')).status).toBe(503);
    } finally {
      proxy.resume();
    }
    // SIGTERM: each process writes what it has not written yet before it exits.
    expect(await first!.stop('SIGTERM', 15_000)).toBe(0);
    await waitFor(
      'the second process to write its counts once its database is back',
      async () => {
        const slo = await runCli(['slo', '--json'], db.env);
        const api = JSON.parse(slo.stdout).slos.find((s: { name: string }) => s.name === 'api-availability');
        return api.report.full.bad === 10 ? api : undefined;
      },
      30_000,
      250,
    );
    expect(await second!.stop('SIGTERM', 15_000)).toBe(0);

    const slo = await runCli(['slo', '--json'], db.env);
    expect(slo.code, slo.stderr).toBe(0);
    const api = JSON.parse(slo.stdout).slos.find((s: { name: string }) => s.name === 'api-availability');
    // 20 + 30 + 10 answered by the two processes (each process's own /health probes were never called).
    expect(api.report.full).toMatchObject({ good: 50, bad: 10, total: 60 });
    expect(api.report.windows.find((w: { window: string }) => w.window === '5m')).toMatchObject({ good: 50, bad: 10, total: 60 });
    expect(api.report.firing).toBe('page');

    const sql = await runCli(['sql', '--json', "SELECT count(DISTINCT instance_id)::int AS instances, sum(requests)::int AS requests FROM request_counts"], db.env);
    expect(sql.code, sql.stderr).toBe(0);
    expect(JSON.parse(sql.stdout)).toEqual([{ instances: 2, requests: 60 }]);
  });
});
