import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { EvalError } from './eval-errors.ts';
import { planLogBatches, type KeyValue, type LogBatchInput } from './mlflow-batching.ts';
import { backoffDelay, parseRetryAfter, retryAfterDelay, sleep as realSleep, type Sleep } from './http-retry.ts';

/**
 * A small client of the MLflow tracking server's REST API (2.x): experiments, runs, batched
 * params/metrics/tags and artifact upload through the server's artifact proxy. Requests go through
 * node:http so artifact files stream from disk with a Content-Length (a 100k-row results.jsonl
 * never sits in memory) and JSON calls share the same retry and error wording.
 */

export {
  flattenParams,
  MLFLOW_LIMITS,
  planLogBatches,
  TRUNCATION_MARKER,
  truncateValue,
  type KeyValue,
  type LogBatchInput,
  type LogBatchRequest,
  type MlflowMetric,
} from './mlflow-batching.ts';

export interface MlflowClientOptions {
  /** e.g. `http://mlflow:5000`; credentials in the URL are used as basic auth and never shown. */
  trackingUri: string;
  /** Bearer token (MLFLOW_TRACKING_TOKEN); wins over basic auth. */
  token?: string;
  username?: string;
  password?: string;
  /** @defaultValue 30_000 */
  timeoutMs?: number;
  /** Attempts per request on 429, 5xx and network errors. @defaultValue 3 */
  maxAttempts?: number;
  sleep?: Sleep;
}

/** Options from MLFLOW_TRACKING_URI / _TOKEN / _USERNAME / _PASSWORD; null when no URI is set. */
export function mlflowOptionsFromEnv(env: Record<string, string | undefined>): MlflowClientOptions | null {
  const uri = env.MLFLOW_TRACKING_URI?.trim();
  if (uri === undefined || uri === '') return null;
  return {
    trackingUri: uri,
    token: env.MLFLOW_TRACKING_TOKEN || undefined,
    username: env.MLFLOW_TRACKING_USERNAME || undefined,
    password: env.MLFLOW_TRACKING_PASSWORD || undefined,
  };
}

/** A refused or failed MLflow request; the message names the URI (no credentials) and the status. */
export class MlflowError extends EvalError {
  /** HTTP status MLflow answered, null when unreachable. (`status` is the evalops API status of an AppError.) */
  readonly upstreamStatus: number | null;
  readonly uri: string;
  readonly mlflowErrorCode: string | null;
  /** What the server asked us to wait (Retry-After), in milliseconds. */
  readonly retryAfterMs: number | null;

  constructor(
    message: string,
    options: { status: number | null; uri: string; mlflowErrorCode?: string | null; retryable: boolean; retryAfterMs?: number | null },
  ) {
    super(options.retryable ? 'UNAVAILABLE' : 'VALIDATION', message);
    this.upstreamStatus = options.status;
    this.uri = options.uri;
    this.mlflowErrorCode = options.mlflowErrorCode ?? null;
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}

export interface MlflowRun {
  runId: string;
  experimentId: string;
  /** e.g. `mlflow-artifacts:/1/abc/artifacts`; null when the server did not say. */
  artifactUri: string | null;
}

type Body = { json: unknown } | { data: string | Uint8Array; contentType?: string } | { filePath: string; contentType?: string };

/** MLflow tracking client; one per tracking URI. */
export class MlflowClient {
  readonly #base: URL;
  /** Path prefix of a server mounted below the root (`/mlflow`), without a trailing slash; usually ''. */
  readonly #basePath: string;
  readonly #shownUri: string;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #sleep: Sleep;

  constructor(options: MlflowClientOptions) {
    let url: URL;
    try {
      url = new URL(options.trackingUri);
    } catch {
      throw new EvalError('VALIDATION', 'MLFLOW_TRACKING_URI is not a URL (expected e.g. http://mlflow:5000)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new EvalError('VALIDATION', `MLFLOW_TRACKING_URI must be an http(s) URL of a tracking server, got ${url.protocol}`);
    }
    const urlUser = decodeURIComponent(url.username);
    const urlPassword = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    this.#basePath = url.pathname.replace(/\/+$/, '');
    url.search = '';
    url.hash = '';
    this.#base = url;
    this.#shownUri = `${url.origin}${this.#basePath}`;
    const username = options.username ?? (urlUser || undefined);
    const password = options.password ?? (urlPassword || undefined);
    if (options.token !== undefined && options.token !== '') this.#authorization = `Bearer ${options.token}`;
    else if (username !== undefined) this.#authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.#sleep = options.sleep ?? realSleep;
  }

  /** The tracking URI without credentials, as shown in errors. */
  get uri(): string {
    return this.#shownUri;
  }

  /** Id of the experiment named `name`, created when missing. */
  async getOrCreateExperiment(name: string): Promise<string> {
    const existing = await this.#findExperiment(name);
    if (existing !== null) return existing;
    try {
      const created = (await this.#call('POST', '/api/2.0/mlflow/experiments/create', { json: { name } })) as { experiment_id?: unknown };
      return String(created.experiment_id);
    } catch (error) {
      // Another worker created it between our lookup and our create.
      if (error instanceof MlflowError && error.mlflowErrorCode === 'RESOURCE_ALREADY_EXISTS') {
        const again = await this.#findExperiment(name);
        if (again !== null) return again;
      }
      throw error;
    }
  }

  async #findExperiment(name: string): Promise<string | null> {
    try {
      const found = (await this.#call('GET', '/api/2.0/mlflow/experiments/get-by-name', { query: { experiment_name: name } })) as {
        experiment?: { experiment_id?: unknown; lifecycle_stage?: unknown };
      };
      if (found.experiment?.lifecycle_stage === 'deleted') {
        throw new MlflowError(
          `MLflow at ${this.#shownUri}: experiment '${name}' is deleted; restore it in MLflow or choose another experiment name`,
          { status: 200, uri: this.#shownUri, retryable: false },
        );
      }
      return found.experiment?.experiment_id === undefined ? null : String(found.experiment.experiment_id);
    } catch (error) {
      if (error instanceof MlflowError && error.mlflowErrorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw error;
    }
  }

  /** Starts a run tagged with its name, the git commit and the evalops run id. */
  async createRun(input: {
    experimentId: string;
    runName: string;
    commitSha: string;
    evalopsRunId: string;
    startTime?: number;
    tags?: Record<string, string>;
  }): Promise<MlflowRun> {
    const tags: KeyValue[] = [
      { key: 'mlflow.runName', value: input.runName },
      { key: 'mlflow.source.git.commit', value: input.commitSha },
      { key: 'evalops.run_id', value: input.evalopsRunId },
      ...Object.entries(input.tags ?? {}).map(([key, value]) => ({ key, value })),
    ];
    const answer = (await this.#call('POST', '/api/2.0/mlflow/runs/create', {
      json: { experiment_id: input.experimentId, run_name: input.runName, start_time: input.startTime ?? Date.now(), tags },
    })) as { run?: { info?: { run_id?: unknown; run_uuid?: unknown; experiment_id?: unknown; artifact_uri?: unknown } } };
    const info = answer.run?.info;
    const runId = info?.run_id ?? info?.run_uuid;
    if (typeof runId !== 'string') {
      throw new MlflowError(`MLflow at ${this.#shownUri}: runs/create answered without run.info.run_id`, {
        status: 200,
        uri: this.#shownUri,
        retryable: false,
      });
    }
    return {
      runId,
      experimentId: info?.experiment_id === undefined ? input.experimentId : String(info.experiment_id),
      artifactUri: typeof info?.artifact_uri === 'string' ? info.artifact_uri : null,
    };
  }

  /** Logs params, metrics and tags in as many LogBatch requests as MLflow's limits need. */
  async logBatch(runId: string, input: LogBatchInput): Promise<{ requests: number }> {
    const batches = planLogBatches(input);
    for (const batch of batches) {
      await this.#call('POST', '/api/2.0/mlflow/runs/log-batch', { json: { run_id: runId, ...batch } });
    }
    return { requests: batches.length };
  }

  /**
   * Uploads one artifact through the tracking server's artifact proxy
   * (`PUT /api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>`), streaming files from disk.
   */
  async uploadArtifact(
    run: MlflowRun,
    artifactPath: string,
    content: { data: string | Uint8Array } | { filePath: string },
    contentType = 'application/octet-stream',
  ): Promise<void> {
    const root = this.#artifactRoot(run);
    const path = artifactPath.split('/').filter((s) => s !== '' && s !== '.' && s !== '..').map(encodeURIComponent).join('/');
    if (path === '') throw new EvalError('VALIDATION', `artifact path '${artifactPath}' names no file`);
    await this.#call('PUT', `/api/2.0/mlflow-artifacts/artifacts/${root}/${path}`, { ...content, contentType });
  }

  #artifactRoot(run: MlflowRun): string {
    const fallback = `${encodeURIComponent(run.experimentId)}/${encodeURIComponent(run.runId)}/artifacts`;
    if (run.artifactUri === null) return fallback;
    if (!run.artifactUri.startsWith('mlflow-artifacts:')) {
      throw new MlflowError(
        `MLflow at ${this.#shownUri}: the run's artifact location is ${run.artifactUri.replace(/\/\/[^/@]*@/, '//')}, not the ` +
          'artifact proxy (mlflow-artifacts:); start the server with --serve-artifacts ' +
          'and use an experiment whose artifact location is proxied',
        { status: null, uri: this.#shownUri, retryable: false },
      );
    }
    // mlflow-artifacts:/1/abc/artifacts or mlflow-artifacts://host:port/1/abc/artifacts
    const rest = run.artifactUri.slice('mlflow-artifacts:'.length).replace(/^\/\/[^/]*/, '');
    const trimmed = rest.replace(/^\/+|\/+$/g, '');
    return trimmed === '' ? fallback : trimmed;
  }

  /** Marks the run FINISHED or FAILED (or KILLED) with an end time. */
  async setTerminated(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED', endTime: number = Date.now()): Promise<void> {
    await this.#call('POST', '/api/2.0/mlflow/runs/update', { json: { run_id: runId, status, end_time: endTime } });
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, body: Body | { query: Record<string, string> }): Promise<unknown> {
    for (let attempt = 1; ; attempt += 1) {
      let failure: MlflowError;
      try {
        return await this.#once(method, path, body);
      } catch (error) {
        if (!(error instanceof MlflowError)) throw error;
        failure = error;
      }
      if (!failure.retryable || attempt >= this.#maxAttempts) throw failure;
      const wait = failure.retryAfterMs !== null ? retryAfterDelay(Math.min(failure.retryAfterMs, 60_000)) : backoffDelay(attempt);
      await this.#sleep(wait);
    }
  }

  #once(method: string, path: string, body: Body | { query: Record<string, string> }): Promise<unknown> {
    const url = new URL(this.#base.toString());
    url.pathname = `${this.#basePath}${path}`;
    if ('query' in body) for (const [k, v] of Object.entries(body.query)) url.searchParams.set(k, v);
    const what = `${method} ${path}`;
    return new Promise<unknown>((resolve, reject) => {
      void (async () => {
        const headers: Record<string, string | number> = { accept: 'application/json' };
        if (this.#authorization !== undefined) headers.authorization = this.#authorization;
        let payload: Buffer | null = null;
        if ('json' in body) {
          payload = Buffer.from(JSON.stringify(body.json));
          headers['content-type'] = 'application/json';
        } else if ('data' in body) {
          payload = Buffer.from(body.data);
          headers['content-type'] = body.contentType ?? 'application/octet-stream';
        } else if ('filePath' in body) {
          headers['content-type'] = body.contentType ?? 'application/octet-stream';
          headers['content-length'] = (await stat(body.filePath)).size;
        }
        if (payload !== null) headers['content-length'] = payload.length;
        const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers, timeout: this.#timeoutMs });
        request.on('timeout', () => request.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
        request.on('error', (error: NodeJS.ErrnoException) => {
          reject(
            new MlflowError(
              `MLflow tracking server at ${this.#shownUri} is unreachable (${error.code ?? error.message}) during ${what}: ` +
                'check MLFLOW_TRACKING_URI and that the server is running',
              { status: null, uri: this.#shownUri, retryable: true },
            ),
          );
        });
        request.on('response', (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= 1_000_000) chunks.push(chunk);
          });
          response.on('error', (error) => request.destroy(error));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              try {
                resolve(text.trim() === '' ? {} : JSON.parse(text));
              } catch {
                resolve({});
              }
              return;
            }
            reject(this.#httpError(status, what, text, parseRetryAfter(response.headers['retry-after'] as string | undefined)));
          });
        });
        if ('filePath' in body) {
          const file = createReadStream(body.filePath);
          file.on('error', (error) => request.destroy(error));
          request.on('close', () => file.destroy());
          file.pipe(request);
        } else {
          request.end(payload ?? undefined);
        }
      })().catch(reject);
    });
  }

  #httpError(status: number, what: string, text: string, retryAfterMs: number | null): MlflowError {
    let code: string | null = null;
    let message = text.replace(/\s+/g, ' ').trim().slice(0, 300);
    try {
      const json = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof json.error_code === 'string') code = json.error_code;
      if (typeof json.message === 'string') message = json.message.slice(0, 300);
    } catch {
      // not JSON (a proxy's HTML page): keep the excerpt
    }
    const hint =
      status === 401
        ? ': the credentials were missing or rejected; check MLFLOW_TRACKING_TOKEN or ' +
          'MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD'
        : status === 403
          ? ': the credentials were accepted but lack permission for this experiment or run; ' +
            'grant the user EDIT (or MANAGE) permission in MLflow, or use another account'
          : status === 404 && what.includes('mlflow-artifacts')
            ? ': the artifact proxy is not enabled; start the server with --serve-artifacts'
            : '';
    const detail = message === '' ? '' : ` (${code === null ? '' : `${code}: `}${message})`;
    const retryable = status === 429 || status >= 500;
    return new MlflowError(`MLflow at ${this.#shownUri} refused ${what} with HTTP ${status}${hint}${detail}`, {
      status,
      uri: this.#shownUri,
      mlflowErrorCode: code,
      retryable,
      retryAfterMs,
    });
  }
}
