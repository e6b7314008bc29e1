import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { redactUrl } from '../config/config.ts';
import { createRedisProbe } from '../db/redis-probe.ts';
import { brokerCounts, createRedis, queueNameFor, queuedTypesInRedis, redisReady } from '../jobs/runners/bullmq-queues.ts';
import { listLiveWorkers, pingWorkers, type WorkerInfo } from '../jobs/runners/bullmq-worker-registry.ts';

/**
 * The doctor's probes of a live deployment: HTTP endpoints, Redis, queue-mode workers and backlog,
 * MLflow. Each is bounded in time and reports what it saw rather than throwing, and none changes
 * data (the worker ping leaves nothing behind; BullMQ queues are opened without their meta update).
 */

export interface HttpProbe {
  readonly route: string;
  /** HTTP status, or null when there was no answer. */
  readonly status: number | null;
  /** Parsed JSON, or the text. */
  readonly body: unknown;
  readonly error: string | null;
  readonly ms: number;
}

/** One GET, bounded by `timeoutMs`. */
export async function probeHttp(baseUrl: string, route: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<HttpProbe> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(`${baseUrl}${route}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* text */
    }
    return { route, status: res.status, body, error: null, ms: ms() };
  } catch (err) {
    const e = err as Error & { cause?: Error };
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.message ?? e.message);
    return { route, status: null, body: null, error: reason, ms: ms() };
  }
}

export interface RedisPing {
  readonly ok: boolean;
  readonly latencyMs: number | null;
  readonly maxmemoryPolicy: string | null;
  readonly error: string | null;
}

/** PING on REDIS_URL, as /health/detailed does it, from the doctor's side. */
export async function pingRedis(url: string, timeoutMs: number): Promise<RedisPing> {
  const probe = createRedisProbe(url);
  try {
    const r = await probe.ping(timeoutMs);
    return { ok: true, latencyMs: Math.round(r.latencyMs * 100) / 100, maxmemoryPolicy: r.maxmemoryPolicy, error: null };
  } catch (err) {
    return { ok: false, latencyMs: null, maxmemoryPolicy: null, error: (err as Error).message };
  } finally {
    await probe.close();
  }
}

export interface QueueEvidence {
  /** Null when Redis could not be reached (then `error` says why). */
  readonly asked: number | null;
  readonly answered: readonly (WorkerInfo & { rtt_ms: number })[];
  /** Registered (heartbeat not expired) but silent to the ping. */
  readonly silent: readonly WorkerInfo[];
  readonly backlog: ReadonlyArray<{ type: string; waiting: number; delayed: number; active: number; failed: number }>;
  readonly error: string | null;
}

/** `evalops workers ping` and the BullMQ side of `evalops queue stats`, read only. */
export async function inspectQueue(url: string, prefix: string, timeoutMs: number): Promise<QueueEvidence> {
  const commands = createRedis(url, 'commands', 'evalops-doctor');
  let blocking: Redis | undefined;
  const queues: Queue[] = [];
  try {
    await redisReady(commands, timeoutMs);
    blocking = createRedis(url, 'blocking', 'evalops-doctor:ping-replies');
    const { asked, answers } = await pingWorkers(commands, blocking, prefix, timeoutMs);
    const registered = await listLiveWorkers(commands, prefix);
    const answeredIds = new Set(answers.map((a) => a.info.worker_id));
    const backlog = [];
    for (const type of await queuedTypesInRedis(commands, prefix)) {
      // skipMetasUpdate: opening a queue must not write its meta hash; the doctor only reads.
      const queue = new Queue(queueNameFor(type), { connection: commands, prefix, skipMetasUpdate: true });
      queue.on('error', () => {});
      queues.push(queue);
      backlog.push({ type, ...(await brokerCounts(queue)) });
    }
    return {
      asked,
      answered: answers.map((a) => ({ ...a.info, rtt_ms: a.rtt_ms })),
      silent: registered.filter((w) => !answeredIds.has(w.worker_id)),
      backlog,
      error: null,
    };
  } catch (err) {
    return { asked: null, answered: [], silent: [], backlog: [], error: `${(err as Error).message} (REDIS_URL ${redactUrl(url)})` };
  } finally {
    await Promise.allSettled(queues.map((q) => q.close()));
    blocking?.disconnect();
    commands.disconnect();
  }
}

export interface MlflowProbe {
  readonly uri: string;
  readonly reachable: boolean;
  /** True when the server accepted the credentials for a read (a 200, or a 404 for a missing experiment). */
  readonly authorised: boolean;
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly message: string | null;
  readonly experimentId: string | null;
}

export interface MlflowProbeOptions {
  trackingUri: string;
  token?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  experimentName: string;
}

/**
 * Asks the tracking server for the configured experiment with the configured credentials (the call
 * the first publish makes), which creates nothing. A read proves reachability and authentication; it
 * cannot prove the write permission publishing needs (MLflow's EDIT), and the evidence says so.
 */
export async function probeMlflow(options: MlflowProbeOptions, timeoutMs: number): Promise<MlflowProbe> {
  let url: URL;
  try {
    url = new URL(options.trackingUri);
  } catch {
    return { uri: options.trackingUri, reachable: false, authorised: false, status: null, errorCode: null, message: 'MLFLOW_TRACKING_URI is not a URL', experimentId: null };
  }
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  const headers: Record<string, string> = {};
  const username = options.username ?? (user || undefined);
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  else if (username !== undefined) headers.authorization = `Basic ${Buffer.from(`${username}:${options.password ?? pass}`).toString('base64')}`;
  const probe = await probeHttp(base, `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(options.experimentName)}`, timeoutMs, headers);
  const body = (probe.body ?? {}) as { error_code?: string; message?: string; experiment?: { experiment_id?: string } };
  if (probe.status === null) return { uri: base, reachable: false, authorised: false, status: null, errorCode: null, message: probe.error, experimentId: null };
  const errorCode = typeof body.error_code === 'string' ? body.error_code : null;
  const authorised = probe.status === 200 || (probe.status === 404 && errorCode === 'RESOURCE_DOES_NOT_EXIST');
  return {
    uri: base,
    reachable: true,
    authorised,
    status: probe.status,
    errorCode,
    message: typeof body.message === 'string' ? body.message : typeof probe.body === 'string' ? probe.body.slice(0, 200) : null,
    experimentId: body.experiment?.experiment_id ?? null,
  };
}
