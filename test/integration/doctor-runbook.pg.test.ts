import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { casesJsonl, request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { type FakeMlflowServer, startFakeMlflowServer } from '../helpers/fake-mlflow-server.ts';
import { runCli, type ServerProcess, spawnServer, waitFor } from '../helpers/processes.ts';
import { spawnWorker, startRedisServer, type TestRedisServer, type WorkerProcess } from '../helpers/queue-test-support.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * The runbook as code, end to end (issue 6): a real deployment in queue mode (an `evalops serve`
 * process, an `evalops worker` process, PostgreSQL, a redis-server of this file's own, a fake MLflow
 * on loopback), each runbook scenario injected in turn (jobs failing, a run failing metadata
 * validation, MLflow answering 403, the workers gone, Redis stopped, the database unreachable from
 * the API and from the doctor), and `evalops doctor` naming the right section and evidence each time,
 * and nothing on the healthy system.
 */

let redis: TestRedisServer;
let db: TestDatabase;
let mlflow: FakeMlflowServer;
let proxy: TcpProxy;
let api: ServerProcess;
let worker: WorkerProcess | undefined;
let sqlClient: pg.Client;
const prefix = `doctor_${process.pid}`;

const queueEnv = () => ({ JOB_RUNNER_MODE: 'queue', REDIS_URL: redis.url, QUEUE_PREFIX: prefix, MLFLOW_TRACKING_URI: mlflow.url, MLFLOW_EXPERIMENT_NAME: 'doctor-pg' });

function startWorker(commitSha: string): Promise<WorkerProcess> {
  return spawnWorker({ ...db.env, ...queueEnv(), COMMIT_SHA: commitSha }, ['--name', 'w1', '--concurrency', '4', '--no-metrics']);
}

beforeAll(async () => {
  redis = await startRedisServer();
  db = await createTestDatabase({ backend: 'postgres' });
  mlflow = await startFakeMlflowServer();
  // The API reaches PostgreSQL through a proxy the test can cut; the worker and the doctor directly.
  proxy = await startTcpProxy(5432);
  const viaProxy = new URL(db.databaseUrl!);
  viaProxy.port = String(proxy.port);
  api = await spawnServer({
    ...db.env,
    ...queueEnv(),
    DATABASE_URL: viaProxy.toString(),
    COMMIT_SHA: '0123abcd0123abcd',
    QUEUE_RECONCILE_MS: '500',
    SLI_FLUSH_MS: '200',
    HEALTH_PROBE_TIMEOUT_MS: '500',
    // A shed 503 on a busy machine would be a 5xx finding the test did not inject.
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  worker = await startWorker('0123abcd0123abcd');
  sqlClient = new pg.Client({ connectionString: db.databaseUrl });
  await sqlClient.connect();
  await request(api.url, 'POST', '/v1/prompts', { name: 'doc', messages: [{ role: 'user', content: 'echo: {{text}}' }] });
});

afterAll(async () => {
  proxy?.resume();
  await worker?.stop('SIGTERM', 10_000);
  await api?.stop('SIGTERM', 15_000);
  await sqlClient?.end();
  await proxy?.close();
  await redis?.kill();
  await mlflow?.close();
  await db?.cleanup();
});

interface Finding {
  id: string;
  section: string;
  summary: string;
  evidence: string[];
  next_step: string | null;
  runbook: string;
}
interface Report {
  findings: Finding[];
  checks: Array<Finding & { status: string }>;
}

async function doctor(args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; report: Report }> {
  const res = await runCli(['doctor', '--json', '--url', api.url, ...args], { ...db.env, ...queueEnv(), ...env }, 120_000);
  expect(res.stderr).toBe('');
  return { code: res.code, report: JSON.parse(res.stdout) as Report };
}

const find = (r: Report, id: string) => r.findings.find((f) => f.id === id);
const checkOf = (r: Report, id: string) => r.checks.find((c) => c.id === id)!;

async function evaluate(seed: number): Promise<any> {
  const snapshot = (await uploadDataset(api.url, casesJsonl(4, 'doc'))).body.data_snapshot_id;
  const res = await request(api.url, 'POST', '/v1/evaluations', { prompt_version: 'doc@1', data_snapshot_id: snapshot, provider: 'echo', seed });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForRun(api.url, res.body.run_id, 60_000);
}

function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('evalops doctor on a queue-mode deployment', () => {
  it('reports nothing on a healthy system; --replay reproduces the latest run byte for byte', async () => {
    const job = await request(api.url, 'POST', '/v1/jobs', { type: 'noop' });
    await waitFor('the worker to run a noop job', async () => (await request(api.url, 'GET', `/v1/jobs/${job.body.job_id}`)).body.status === 'succeeded', 30_000);
    const run = await evaluate(1);
    expect(run.status, run.error_message).toBe('succeeded');

    const { code, report } = await doctor();
    expect(report.findings).toEqual([]);
    expect(code).toBe(0);
    expect(checkOf(report, 'B.workers').summary).toBe(`1 worker(s) answered (prefix ${prefix})`);
    expect(checkOf(report, 'B.workers').evidence[0]).toMatch(/^w1 on .* pid \d+: \d\/4 active, types .*evaluation.*, answered in/);
    expect(checkOf(report, 'B.backlog').evidence.join('\n')).toMatch(/BullMQ noop: waiting 0, delayed 0, active 0, failed 0/);
    expect(checkOf(report, 'A.redis').summary).toBe('Redis answers the server and the doctor');

    const replay = await doctor(['--replay', '--replay-timeout', '60000']);
    expect(replay.report.findings).toEqual([]);
    expect(replay.code).toBe(0);
    expect(checkOf(replay.report, 'C.replay').summary).toMatch(new RegExp(`^replay [0-9a-f-]{36} reproduced ${run.run_id} byte for byte$`));
  });

  it('B: failed and cancelled jobs, with the runbook\'s distribution and the errors grouped', async () => {
    const ids: string[] = [];
    const later = new Date(Date.now() + 86_400_000).toISOString();
    for (let i = 0; i < 12; i++) ids.push((await request(api.url, 'POST', '/v1/jobs', { type: 'sleep', payload: { ms: 10 }, run_at: later })).body.job_id);
    // Failed by SQL, as a dependency outage would have left them; cancelled through the API.
    await sqlClient.query(`UPDATE jobs SET status = 'failed', attempts = 3, error_message = 'attempt 3 of 3: upstream 502 from the feature store', finished_at = now() WHERE job_id = ANY($1::uuid[])`, [ids.slice(0, 8)]);
    for (const id of ids.slice(8)) expect((await request(api.url, 'POST', `/v1/jobs/${id}/cancel`)).body.status).toBe('cancelled');

    const { code, report } = await doctor();
    expect(code).toBe(14);
    const dist = find(report, 'B.status_distribution')!;
    expect(dist).toMatchObject({ section: 'B', runbook: 'docs/runbook.md#b-job-success-rate-drop' });
    // 12 bad of 15 ended: the noop, the evaluation and the replay succeeded.
    expect(dist.summary).toBe('12 of 15 ended jobs failed or were cancelled (80.00%), above the 1.00% error budget: burn 80.0x');
    expect(dist.evidence[0]).toBe('jobs created in the last hour: queued 0, running 0, succeeded 3, failed 8, cancelled 4');
    const sample = find(report, 'B.failed_jobs')!;
    expect(sample.summary).toBe('12 failed or cancelled job(s) in the last hour, 2 distinct error(s); largest: 8 × "upstream 502 from the feature store"');
    expect(sample.evidence[0]).toMatch(/^8 × "upstream 502 from the feature store" \(failed; type sleep;/);
    expect(sample.evidence[1]).toMatch(/^4 × "\(no error message\)" \(cancelled; type sleep;/);
  });

  it('C.1/C.2: an evaluation run failing run_metadata validation on the worker', async () => {
    await worker!.stop('SIGTERM', 10_000);
    worker = await startWorker('release-2024.06');
    const run = await evaluate(2);
    expect(run.status).toBe('failed');
    const { code, report } = await doctor();
    expect(code).toBe(14);
    const failed = find(report, 'C.failed_runs')!;
    expect(failed).toMatchObject({ section: 'C', runbook: 'docs/runbook.md#c-evaluation-run-failures' });
    expect(failed.summary).toMatch(/causes: 1 × run_metadata$/);
    expect(failed.evidence).toContain('  run_metadata: invalid commit_sha: must be a lowercase hex commit id (7-64 digits) or "unknown"');
  });

  it('C.3: MLflow answering 403', async () => {
    mlflow.failWith(403);
    try {
      const { code, report } = await doctor();
      expect(code).toBe(14);
      expect(find(report, 'C.mlflow')!.summary).toBe(`MLflow at ${mlflow.url} refuses the credentials: 403 PERMISSION_DENIED`);
    } finally {
      mlflow.failWith(null);
    }
  });

  it('B.3: no worker answers the ping while a job waits', async () => {
    await worker!.stop('SIGTERM', 10_000);
    worker = undefined;
    const job = await request(api.url, 'POST', '/v1/jobs', { type: 'noop' });
    const { code, report } = await doctor();
    expect(code).toBe(14);
    expect(find(report, 'B.workers')!.summary).toMatch(/^no worker answered within \d+ ms \(prefix doctor_\d+\)$/);
    expect(find(report, 'B.workers')!.next_step).toMatch(/restart the workers \(`evalops worker`/);
    expect(find(report, 'B.backlog')!.summary).toBe('1 due job(s) and no worker to run them');
    expect(find(report, 'A.background_tasks')!.summary).toMatch(/no live worker while \d+ job\(s\) are queued/);

    worker = await startWorker('0123abcd0123abcd');
    await waitFor('the waiting job to run', async () => (await request(api.url, 'GET', `/v1/jobs/${job.body.job_id}`)).body.status === 'succeeded', 30_000);
  });

  it('A: Redis stopped, seen by the server and by the doctor, and the workers cannot be pinged', async () => {
    await redis.kill();
    try {
      const { code, report } = await doctor();
      expect(code).toBe(14);
      const r = find(report, 'A.redis')!;
      expect(r).toMatchObject({ section: 'A', runbook: 'docs/runbook.md#a-api-availability-drop' });
      expect(r.summary).toContain("the server's Redis is unhealthy: cannot reach Redis");
      expect(r.summary).toContain(`cannot reach Redis at ${redis.url}`);
      expect(r.next_step).toMatch(/redis-cli -u "\$REDIS_URL" ping/);
      expect(find(report, 'B.workers')!.summary).toMatch(/^cannot ping the workers: /);
    } finally {
      await redis.restart();
    }
    await waitFor('Redis healthy again in /health/detailed', async () => (await request(api.url, 'GET', '/health/detailed')).body.components?.redis?.status === 'healthy', 30_000, 200);
  });

  it("A: the API's database unreachable, then the 5xx it answered meanwhile", async () => {
    proxy.cut();
    let cutReport: Report;
    try {
      for (let i = 0; i < 30; i++) expect((await request(api.url, 'GET', '/v1/jobs')).status).toBe(503);
      const { code, report } = await doctor();
      cutReport = report;
      expect(code).toBe(14);
    } finally {
      proxy.resume();
    }
    const dbFinding = find(cutReport, 'A.database')!;
    expect(dbFinding.summary).toMatch(/^the server's database is unhealthy: cannot reach the database/);
    // The doctor itself reaches the database directly: the fault is on the API's side.
    expect(dbFinding.evidence.some((e) => e.startsWith(`the doctor reads postgresql://postgres@127.0.0.1:5432/${db.pgDatabase}`))).toBe(true);

    // Counted while the database was away, written when it came back: the availability SLI keeps them.
    await waitFor('the 503 answers to reach request_counts', async () => {
      const { rows } = await sqlClient.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM request_counts WHERE status_code = 503 AND route_class = 'jobs'`);
      return rows[0].n >= 30;
    }, 30_000, 200);
    const { report } = await doctor();
    const spike = find(report, 'A.error_ratio')!;
    expect(spike.summary).toMatch(/requests answered 5xx in the last 5 minutes, above 1\.44%$/);
    expect(spike.evidence).toContain('  /v1/jobs: 30 × 503');
  });

  it("A: the doctor's own DATABASE_URL points at a dead port", async () => {
    const port = await deadPort();
    const { code, report } = await doctor([], { DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/nothing` });
    expect(code).toBe(14);
    const f = find(report, 'A.database')!;
    expect(f.summary).toBe(`cannot reach the database: cannot connect to the database: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(f.next_step).toMatch(/check the endpoint and credentials/);
    // What needs the database says why it did not run, rather than passing.
    expect(checkOf(report, 'B.status_distribution')).toMatchObject({ status: 'skipped' });
    expect(checkOf(report, 'B.status_distribution').summary).toContain(`connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(checkOf(report, 'C.failed_runs').status).toBe('skipped');
  });
});
