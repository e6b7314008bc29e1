import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, waitFor } from '../helpers/processes.ts';
import { deletePrefix, spawnWorker, TEST_REDIS_URL, testPrefix, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/** The runbook's queue-mode checks: configuration, `workers ping`, `queue stats`, health and worker metrics. */

let db: TestDatabase;
let sqlClient: pg.Client;
const prefix = testPrefix('ops');
const queueEnv = () => ({ ...db.env, JOB_RUNNER_MODE: 'queue', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix });
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ backend: 'postgres' });
  sqlClient = new pg.Client({ connectionString: db.databaseUrl });
  await sqlClient.connect();
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop('SIGKILL', 5000)));
  await sqlClient?.end();
  await deletePrefix(TEST_REDIS_URL, prefix);
  await db?.cleanup();
});

async function worker(name: string, extra: string[] = []): Promise<WorkerProcess> {
  const w = await spawnWorker(queueEnv(), ['--name', name, ...extra]);
  workers.push(w);
  return w;
}

describe('queue-mode configuration', () => {
  it('needs REDIS_URL and a PostgreSQL DATABASE_URL, one line each', async () => {
    const res = await runCli(['config'], { JOB_RUNNER_MODE: 'queue', DATA_DIR: db.dataDir });
    expect(res.code).toBe(78);
    const lines = res.stderr.split('\n').filter((l) => l.trim().startsWith('REDIS_URL') || l.trim().startsWith('DATABASE_URL'));
    expect(lines).toHaveLength(2);
    expect(res.stderr).toMatch(/REDIS_URL: required when JOB_RUNNER_MODE=queue/);
    expect(res.stderr).toMatch(/DATABASE_URL: required when JOB_RUNNER_MODE=queue \(a PostgreSQL URL: the embedded PGlite admits one process/);
    const ok = await runCli(['config'], queueEnv());
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('queue');
  });

  it('refuses to start a worker without Redis or for a type it has no handler for', async () => {
    const noRedis = await runCli(['worker'], { ...db.env });
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toContain('REDIS_URL is not set');
    const unknown = await runCli(['worker', '--types', 'noop,nope'], queueEnv());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no handler for job type\(s\) nope/);
  });
});

describe('evalops workers ping', () => {
  it('exits non-zero when no worker answers, lists every live worker, and forgets a killed one', async () => {
    const none = await runCli(['workers', 'ping', '--timeout', '500'], queueEnv());
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('no worker answered');

    const a = await worker('ping-a', ['--concurrency', '3']);
    const b = await worker('ping-b', ['--concurrency', '5', '--types', 'sleep']);
    const res = await runCli(['workers', 'ping', '--json'], queueEnv());
    expect(res.code, res.stderr).toBe(0);
    const answered = JSON.parse(res.stdout).answered as Array<Record<string, any>>;
    expect(answered.map((w) => w.name).sort()).toEqual(['ping-a', 'ping-b']);
    expect(answered.find((w) => w.name === 'ping-a')).toMatchObject({ concurrency: 3, active: 0, pid: a.proc.pid, types: expect.arrayContaining(['noop', 'sleep']) });
    expect(answered.find((w) => w.name === 'ping-b')).toMatchObject({ concurrency: 5, pid: b.proc.pid, types: ['sleep'] });
    for (const w of answered) {
      expect(typeof w.host).toBe('string');
      expect(Date.now() - Date.parse(w.heartbeat_at)).toBeLessThan(10_000);
      expect(w.metrics_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    }
    const table = await runCli(['workers', 'ping'], queueEnv());
    expect(table.stdout).toMatch(/ping-a .*\| +3 \|/);
    expect(table.stdout).toContain('2 worker(s) answered');

    await b.stop('SIGKILL');
    await waitFor('the killed worker to drop out of the registry', async () => {
      const r = await runCli(['workers', 'ping', '--json', '--timeout', '500'], queueEnv());
      const j = JSON.parse(r.stdout);
      return j.answered.length === 1 && j.registered_not_answering.length === 0;
    }, 20_000, 500);
    await a.stop('SIGTERM');
  });
});

describe('worker metrics', () => {
  it('serves Prometheus text on its own port', async () => {
    const api = await startTestServer(db, queueEnv());
    const w = await worker('metrics');
    try {
      const { body } = await api.api('POST', '/v1/jobs', { type: 'noop' });
      await waitFor('the job to succeed', async () => (await api.api('GET', `/v1/jobs/${body.job_id}`)).body.status === 'succeeded');
      const res = await fetch(w.metricsUrl!, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toMatch(/^evalops_jobs_finished_total\{type="noop",status="succeeded"\} 1$/m);
      expect(text).toMatch(/^evalops_worker_concurrency 10$/m);
      expect(text).toMatch(/^evalops_worker_jobs_active 0$/m);
      expect(text).toMatch(/^evalops_worker_info\{name="metrics",.*\} 1$/m);
      expect(text).toContain('evalops_job_duration_seconds_bucket');
      expect(text).toContain('process_cpu_seconds_total');
      // The API's own counter does not see the jobs its workers finish: the job-success rate in
      // Prometheus needs every worker's port scraped (README, Queue mode; runbook Q.6).
      const apiMetrics = await api.api('GET', '/metrics');
      expect(apiMetrics.status).toBe(200);
      expect(String(apiMetrics.body)).toContain('# TYPE evalops_jobs_finished_total counter');
      expect(String(apiMetrics.body)).not.toMatch(/^evalops_jobs_finished_total\{/m);
      expect(String(apiMetrics.body)).toMatch(/^evalops_jobs_submitted_total\{type="noop"\} 1$/m);
    } finally {
      await w.stop('SIGTERM');
      await api.close(2000);
    }
  });
});

describe('a worker taking several types, all its slots busy', () => {
  it('leaves the deliveries of its other types to an idle worker', async () => {
    const api = await startTestServer(db, queueEnv());
    const busy = await worker('busy', ['--types', 'noop,sleep', '--concurrency', '1']);
    const idle = await worker('idle', ['--types', 'noop']);
    try {
      const long = (await api.api('POST', '/v1/jobs', { type: 'sleep', payload: { ms: 60_000 } })).body.job_id;
      await waitFor('the sleep job to run on the busy worker', async () => {
        const j = (await api.api('GET', `/v1/jobs/${long}`)).body;
        return j.status === 'running' && String(j.locked_by).startsWith('busy:');
      });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await api.api('POST', '/v1/jobs', { type: 'noop', payload: { i } })).body.job_id);
      await waitFor('the noop jobs to succeed while the busy worker sleeps', async () => {
        const states = await Promise.all(ids.map(async (id) => (await api.api('GET', `/v1/jobs/${id}`)).body.status));
        return states.every((st) => st === 'succeeded');
      }, 15_000, 100);
      await api.api('POST', `/v1/jobs/${long}/cancel`);
    } finally {
      await busy.stop('SIGTERM');
      await idle.stop('SIGTERM');
      await api.close(2000);
    }
    const ran = (w: WorkerProcess) => w.logs.filter((l) => l.msg === 'job finished' && l.type === 'noop').length;
    expect(ran(idle)).toBe(5);
    expect(ran(busy)).toBe(0);
  });
});

describe('evalops queue stats and /health/detailed background_tasks', () => {
  it('flag a queued row BullMQ does not hold, until the API reconciles it; health follows the workers', async () => {
    // A row written while no API ran in queue mode: in the table, not in BullMQ.
    const { rows } = await sqlClient.query<{ job_id: string }>(
      `INSERT INTO jobs (job_id, type, payload, max_attempts, updated_at) VALUES (gen_random_uuid(), 'noop', '{}', 3, now() - INTERVAL '10 seconds') RETURNING job_id`,
    );
    const id = rows[0]!.job_id;
    const before = await runCli(['queue', 'stats'], queueEnv());
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/^ noop .*\| +1 \| DISAGREE$/m);
    expect(before.stdout).toContain('noop: 1 queued row(s) not in BullMQ');
    const json = JSON.parse((await runCli(['queue', 'stats', '--json'], queueEnv())).stdout);
    expect(json.agree).toBe(false);
    expect(json.types.find((t: { type: string }) => t.type === 'noop')).toMatchObject({ missing: 1, table: { queued_due: 1 }, bullmq: { waiting: 0 } });

    const api = await startTestServer(db, { ...queueEnv(), QUEUE_RECONCILE_MS: '300' });
    try {
      await waitFor('the reconciler to enqueue it', async () => JSON.parse((await runCli(['queue', 'stats', '--json'], queueEnv())).stdout).agree === true, 20_000, 300);
      const after = JSON.parse((await runCli(['queue', 'stats', '--json'], queueEnv())).stdout);
      expect(after.types.find((t: { type: string }) => t.type === 'noop')).toMatchObject({ missing: 0, bullmq: { waiting: 1 }, table: { queued_due: 1 } });

      const waiting = await api.api('GET', '/health/detailed');
      expect(waiting.status).toBe(503);
      expect(waiting.body.components.background_tasks).toMatchObject({ status: 'unhealthy', details: { live_workers: 0, queued: 1, broker_backlog: { waiting: 1 } } });
      expect(waiting.body.components.background_tasks.details.oldest_queued_age_ms).toBeGreaterThanOrEqual(0);

      const w = await worker('health');
      await waitFor('the row to succeed', async () => (await api.api('GET', `/v1/jobs/${id}`)).body.status === 'succeeded');
      const healthy = await api.api('GET', '/health/detailed');
      expect(healthy.status).toBe(200);
      expect(healthy.body.components.background_tasks).toMatchObject({ status: 'healthy', details: { live_workers: 1, workers: [expect.objectContaining({ name: 'health' })] } });
      await w.stop('SIGTERM');
      // Nothing waits and no worker lives: degraded, not unhealthy.
      const idle = await api.api('GET', '/health/detailed');
      expect(idle.status).toBe(200);
      expect(idle.body.components.background_tasks).toMatchObject({ status: 'degraded', details: { live_workers: 0 } });
    } finally {
      await api.close(2000);
    }
  });
});
