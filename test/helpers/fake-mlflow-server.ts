import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 (port 0) implementing the MLflow tracking REST endpoints evalops
 * uses, as MLflow documents them: experiments get-by-name/create, runs create/get/update/log-batch
 * (rejecting requests over the documented LogBatch limits, as MLflow does) and the artifact proxy
 * PUT. It records every request, and can require credentials (401) or refuse everything (403).
 */

export interface FakeMlflowOptions {
  /** Require `Authorization: Bearer <token>` ... */
  token?: string;
  /** ... or basic auth with these. */
  username?: string;
  password?: string;
}

export interface MlflowRecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** Parsed JSON for JSON requests; null otherwise (artifact bodies are in `artifacts`). */
  body: unknown;
  bytes: number;
}

export interface FakeRun {
  info: {
    run_id: string;
    run_uuid: string;
    experiment_id: string;
    run_name: string;
    status: string;
    start_time: number;
    end_time: number | null;
    artifact_uri: string;
    lifecycle_stage: 'active';
  };
  params: Map<string, string>;
  metrics: Array<{ key: string; value: number; timestamp: number; step: number }>;
  tags: Map<string, string>;
}

export interface FakeMlflowServer {
  url: string;
  requests: MlflowRecordedRequest[];
  experiments: Map<string, { experiment_id: string; name: string; lifecycle_stage: 'active' | 'deleted' }>;
  runs: Map<string, FakeRun>;
  /** Artifact bytes by path under `/api/2.0/mlflow-artifacts/artifacts/`. */
  artifacts: Map<string, Buffer>;
  /** Answer every request with this status (e.g. 403) until set back to null. */
  failWith(status: number | null): void;
  close(): Promise<void>;
}

const LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000, paramValue: 6000 };
const ARTIFACTS_PREFIX = '/api/2.0/mlflow-artifacts/artifacts/';

/** Starts the server; always `close()` it (afterAll). */
export async function start(options: FakeMlflowOptions = {}): Promise<FakeMlflowServer> {
  const requests: MlflowRecordedRequest[] = [];
  const experiments: FakeMlflowServer['experiments'] = new Map();
  const runs = new Map<string, FakeRun>();
  const artifacts = new Map<string, Buffer>();
  let failure: number | null = null;
  let nextExperiment = 1;
  let nextRun = 1;

  const authorised = (req: IncomingMessage): boolean => {
    if (options.token !== undefined) return req.headers.authorization === `Bearer ${options.token}`;
    if (options.username !== undefined) {
      const expected = Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64');
      return req.headers.authorization === `Basic ${expected}`;
    }
    return true;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, path: string, query: Record<string, string>, raw: Buffer): void => {
    if (!authorised(req)) return error(res, 401, 'UNAUTHENTICATED', 'You are not authenticated.');
    if (failure !== null) return error(res, failure, failure === 403 ? 'PERMISSION_DENIED' : 'INTERNAL_ERROR', 'Permission denied');
    const json = (): Record<string, unknown> => (raw.length === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Record<string, unknown>));

    if (req.method === 'PUT' && path.startsWith(ARTIFACTS_PREFIX)) {
      artifacts.set(decodeURIComponent(path.slice(ARTIFACTS_PREFIX.length)), raw);
      return send(res, 200, {});
    }
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /api/2.0/mlflow/experiments/get-by-name': {
        const found = experiments.get(query.experiment_name ?? '');
        if (found === undefined) return error(res, 404, 'RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${query.experiment_name}'`);
        return send(res, 200, { experiment: { ...found, artifact_location: `mlflow-artifacts:/${found.experiment_id}` } });
      }
      case 'POST /api/2.0/mlflow/experiments/create': {
        const { name } = json() as { name?: string };
        if (typeof name !== 'string' || name === '') return error(res, 400, 'INVALID_PARAMETER_VALUE', "Missing value for required parameter 'name'.");
        if (experiments.has(name)) return error(res, 400, 'RESOURCE_ALREADY_EXISTS', `Experiment '${name}' already exists.`);
        const experiment_id = String(nextExperiment++);
        experiments.set(name, { experiment_id, name, lifecycle_stage: 'active' });
        return send(res, 200, { experiment_id });
      }
      case 'POST /api/2.0/mlflow/runs/create': {
        const body = json() as { experiment_id?: string; run_name?: string; start_time?: number; tags?: Array<{ key: string; value: string }> };
        const experiment_id = String(body.experiment_id ?? '0');
        const run_id = `run${String(nextRun++).padStart(4, '0')}`;
        const tags = new Map((body.tags ?? []).map((t) => [t.key, t.value] as const));
        const run: FakeRun = {
          info: {
            run_id,
            run_uuid: run_id,
            experiment_id,
            run_name: body.run_name ?? tags.get('mlflow.runName') ?? run_id,
            status: 'RUNNING',
            start_time: body.start_time ?? 0,
            end_time: null,
            artifact_uri: `mlflow-artifacts:/${experiment_id}/${run_id}/artifacts`,
            lifecycle_stage: 'active',
          },
          params: new Map(),
          metrics: [],
          tags,
        };
        runs.set(run_id, run);
        return send(res, 200, { run: runView(run) });
      }
      case 'GET /api/2.0/mlflow/runs/get': {
        const run = runs.get(query.run_id ?? '');
        if (run === undefined) return error(res, 404, 'RESOURCE_DOES_NOT_EXIST', `Run '${query.run_id}' not found`);
        return send(res, 200, { run: runView(run) });
      }
      case 'POST /api/2.0/mlflow/runs/log-batch': {
        const body = json() as {
          run_id?: string;
          params?: Array<{ key: string; value: string }>;
          metrics?: Array<{ key: string; value: number; timestamp: number; step?: number }>;
          tags?: Array<{ key: string; value: string }>;
        };
        const run = runs.get(body.run_id ?? '');
        if (run === undefined) return error(res, 404, 'RESOURCE_DOES_NOT_EXIST', `Run '${body.run_id}' not found`);
        const params = body.params ?? [];
        const metrics = body.metrics ?? [];
        const tags = body.tags ?? [];
        const over =
          metrics.length > LIMITS.metrics
            ? `A batch logging request can contain at most ${LIMITS.metrics} metrics. Got ${metrics.length} metrics.`
            : params.length > LIMITS.params
              ? `A batch logging request can contain at most ${LIMITS.params} params. Got ${params.length} params.`
              : tags.length > LIMITS.tags
                ? `A batch logging request can contain at most ${LIMITS.tags} tags. Got ${tags.length} tags.`
                : metrics.length + params.length + tags.length > LIMITS.total
                  ? `A batch logging request can contain at most ${LIMITS.total} metrics, params, and tags in total.`
                  : params.find((p) => p.value.length > LIMITS.paramValue)
                    ? `Param value exceeds the maximum length of ${LIMITS.paramValue} characters.`
                    : null;
        if (over !== null) return error(res, 400, 'INVALID_PARAMETER_VALUE', over);
        for (const p of params) {
          const previous = run.params.get(p.key);
          if (previous !== undefined && previous !== p.value) {
            return error(res, 400, 'INVALID_PARAMETER_VALUE', `Changing param values is not allowed. Param with key='${p.key}' was already logged.`);
          }
          run.params.set(p.key, p.value);
        }
        for (const m of metrics) run.metrics.push({ key: m.key, value: m.value, timestamp: m.timestamp, step: m.step ?? 0 });
        for (const t of tags) run.tags.set(t.key, t.value);
        return send(res, 200, {});
      }
      case 'POST /api/2.0/mlflow/runs/update': {
        const body = json() as { run_id?: string; status?: string; end_time?: number };
        const run = runs.get(body.run_id ?? '');
        if (run === undefined) return error(res, 404, 'RESOURCE_DOES_NOT_EXIST', `Run '${body.run_id}' not found`);
        if (body.status !== undefined) run.info.status = body.status;
        if (body.end_time !== undefined) run.info.end_time = body.end_time;
        return send(res, 200, { run_info: run.info });
      }
      default:
        return error(res, 404, 'ENDPOINT_NOT_FOUND', `No endpoint ${route}`);
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const raw = Buffer.concat(chunks);
      let body: unknown = null;
      if (String(req.headers['content-type'] ?? '').startsWith('application/json') && raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          body = null;
        }
      }
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body,
        bytes: raw.length,
      });
      try {
        handle(req, res, url.pathname, Object.fromEntries(url.searchParams), raw);
      } catch (err) {
        error(res, 400, 'MALFORMED_REQUEST', err instanceof Error ? err.message : String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    experiments,
    runs,
    artifacts,
    failWith: (status) => {
      failure = status;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export { start as startFakeMlflowServer };

function runView(run: FakeRun): unknown {
  return {
    info: run.info,
    data: {
      params: [...run.params].map(([key, value]) => ({ key, value })),
      metrics: run.metrics,
      tags: [...run.tags].map(([key, value]) => ({ key, value })),
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function error(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { error_code: code, message });
}
