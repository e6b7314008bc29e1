import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { runCli, spawnServer, waitFor } from '../helpers/processes.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.cleanup();
});

async function api(url: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  return res.json();
}

/** Reads the jobs table with the CLI once no server holds the database. */
async function jobsTable(ids: string[]): Promise<Array<{ job_id: string; status: string; attempts: number; error_message: string | null }>> {
  const list = ids.map((id) => `'${id}'`).join(',');
  const res = await runCli(['sql', '--json', `SELECT job_id, status, attempts, error_message FROM jobs WHERE job_id IN (${list})`], db.env);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

const env = () => ({ ...db.env, JOB_LEASE_MS: '2000', JOB_POLL_MS: '200', JOB_CONCURRENCY: '4', JOB_RETRY_BASE_MS: '50', SHUTDOWN_GRACE_MS: '300' });

describe('a process killed with jobs running', () => {
  it('loses no job: after a restart every job finishes, none is left running', async () => {
    const first = await spawnServer(env());
    const sleeps: string[] = [];
    const noops: string[] = [];
    // Long enough that the first four are still running when a loaded machine gets round to looking.
    for (let i = 0; i < 6; i++) sleeps.push((await api(first.url, 'POST', '/v1/jobs', { type: 'sleep', payload: { ms: 4000 }, max_attempts: 3 })).job_id);
    for (let i = 0; i < 20; i++) noops.push((await api(first.url, 'POST', '/v1/jobs', { type: 'noop' })).job_id);
    await waitFor('four sleep jobs running', async () => {
      const { jobs } = await api(first.url, 'GET', '/v1/jobs?status=running&type=sleep');
      return jobs.length === 4;
    });
    first.proc.kill('SIGKILL');
    await first.stop('SIGKILL');

    // Straight after the crash the rows still say running: only lease expiry can tell them lost.
    const afterCrash = await jobsTable(sleeps);
    expect(afterCrash.filter((j) => j.status === 'running')).toHaveLength(4);

    const second = await spawnServer(env());
    try {
      const all = [...sleeps, ...noops];
      await waitFor('every job to finish after the restart', async () => {
        const states = await Promise.all(all.map((id) => api(second.url, 'GET', `/v1/jobs/${id}`)));
        return states.every((j) => j.status === 'succeeded');
      }, 45_000, 250);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
    const rows = await jobsTable([...sleeps, ...noops]);
    expect(rows).toHaveLength(26);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    const recovered = rows.filter((r) => r.error_message?.startsWith('lost: '));
    expect(recovered).toHaveLength(4);
    for (const r of recovered) {
      expect(r.attempts).toBe(2);
      expect(r.error_message).toMatch(/stopped renewing its lease .* during attempt 1 of 3/);
    }
  });
});

describe('graceful shutdown on SIGTERM', () => {
  it('lets a short running job finish, and hands a long one back to the queue unpenalised', async () => {
    // The short job must still be running when SIGTERM comes, and finish within the grace period.
    const server = await spawnServer({ ...env(), SHUTDOWN_GRACE_MS: '5000' });
    const short = await api(server.url, 'POST', '/v1/jobs', { type: 'sleep', payload: { ms: 2500 } });
    const long = await api(server.url, 'POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 } });
    await waitFor('both running', async () => {
      const [a, b] = await Promise.all([api(server.url, 'GET', `/v1/jobs/${short.job_id}`), api(server.url, 'GET', `/v1/jobs/${long.job_id}`)]);
      return a.status === 'running' && b.status === 'running';
    });
    const code = await server.stop('SIGTERM', 20_000);
    expect(code).toBe(0);
    expect(server.logs.some((l) => l.msg === 'job handed back to the queue at shutdown' && l.job_id === long.job_id)).toBe(true);
    const rows = await jobsTable([short.job_id, long.job_id]);
    const byId = Object.fromEntries(rows.map((r) => [r.job_id, r]));
    expect(byId[short.job_id]).toMatchObject({ status: 'succeeded' });
    expect(byId[long.job_id]).toMatchObject({ status: 'queued', attempts: 0 });
  });
});
