import { canonicalJson } from './canonical-json.ts';

/**
 * Packing of params, metrics and tags into MLflow LogBatch requests within the server's documented
 * limits, and the flattening of run metadata into params. Pure, so the limits are unit-tested
 * without a server.
 */

/** MLflow's documented LogBatch limits (REST API "Log Batch" -> Request Limits). */
export const MLFLOW_LIMITS = {
  paramsPerBatch: 100,
  metricsPerBatch: 1000,
  tagsPerBatch: 100,
  itemsPerBatch: 1000,
  /** A request may be 1 MB; this leaves room for JSON framing. */
  bytesPerBatch: 900_000,
  paramValueLength: 6000,
  /** Older servers accept 5000 characters per tag value; newer ones more. */
  tagValueLength: 5000,
} as const;

export const TRUNCATION_MARKER = '...[truncated]';

export interface MlflowMetric {
  key: string;
  value: number;
  /** Milliseconds since the epoch. @defaultValue now */
  timestamp?: number;
  /** @defaultValue 0 */
  step?: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface LogBatchInput {
  params?: Record<string, unknown> | KeyValue[];
  metrics?: MlflowMetric[];
  tags?: Record<string, string> | KeyValue[];
}

export interface LogBatchRequest {
  params: KeyValue[];
  metrics: Array<Required<MlflowMetric>>;
  tags: KeyValue[];
}

/** Cuts a value to `max` characters, the last ones being the truncation marker. */
export function truncateValue(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - TRUNCATION_MARKER.length)}${TRUNCATION_MARKER}`;
}

/**
 * Splits params, metrics and tags into LogBatch requests within MLflow's limits (counts and size),
 * params first so that a run shows its configuration even if a later request fails. Values are
 * stringified (objects as canonical JSON) and truncated; duplicate keys keep the last value.
 */
export function planLogBatches(input: LogBatchInput, now: number = Date.now()): LogBatchRequest[] {
  const params = dedupe(toKeyValues(input.params)).map((p) => ({
    key: p.key,
    value: truncateValue(p.value, MLFLOW_LIMITS.paramValueLength),
  }));
  const tags = dedupe(toKeyValues(input.tags)).map((t) => ({
    key: t.key,
    value: truncateValue(t.value, MLFLOW_LIMITS.tagValueLength),
  }));
  const metrics = (input.metrics ?? [])
    .filter((m) => Number.isFinite(m.value))
    .map((m) => ({ key: m.key, value: m.value, timestamp: m.timestamp ?? now, step: m.step ?? 0 }));
  const batches: LogBatchRequest[] = [];
  let current: LogBatchRequest = { params: [], metrics: [], tags: [] };
  let bytes = 0;
  const start = (): void => {
    batches.push(current);
    current = { params: [], metrics: [], tags: [] };
    bytes = 0;
  };
  const fits = (kind: keyof LogBatchRequest, size: number): boolean => {
    const total = current.params.length + current.metrics.length + current.tags.length;
    const cap =
      kind === 'params' ? MLFLOW_LIMITS.paramsPerBatch : kind === 'tags' ? MLFLOW_LIMITS.tagsPerBatch : MLFLOW_LIMITS.metricsPerBatch;
    // An empty request always takes its first item, whatever its size, so nothing is ever unplaceable.
    const roomForBytes = total === 0 || bytes + size <= MLFLOW_LIMITS.bytesPerBatch;
    return current[kind].length < cap && total < MLFLOW_LIMITS.itemsPerBatch && roomForBytes;
  };
  const add = <K extends keyof LogBatchRequest>(kind: K, item: LogBatchRequest[K][number]): void => {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (!fits(kind, size)) start();
    (current[kind] as Array<LogBatchRequest[K][number]>).push(item);
    bytes += size;
  };
  for (const p of params) add('params', p);
  for (const t of tags) add('tags', t);
  for (const m of metrics) add('metrics', m);
  if (current.params.length + current.metrics.length + current.tags.length > 0) batches.push(current);
  return batches;
}

/**
 * Flattens nested metadata into MLflow params: `provider.type`, `params.temperature`; arrays and
 * empty objects become canonical JSON text, null becomes "null".
 */
export function flattenParams(value: Record<string, unknown>, prefix = ''): KeyValue[] {
  const out: KeyValue[] = [];
  for (const key of Object.keys(value).sort()) {
    const item = value[key];
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length > 0) {
      out.push(...flattenParams(item as Record<string, unknown>, name));
    } else if (item !== undefined) {
      out.push({ key: name, value: typeof item === 'string' ? item : canonicalJson(item) });
    }
  }
  return out;
}

function toKeyValues(input: Record<string, unknown> | KeyValue[] | undefined): KeyValue[] {
  if (input === undefined) return [];
  if (Array.isArray(input)) return input.map((kv) => ({ key: kv.key, value: String(kv.value) }));
  return Object.entries(input)
    .filter(([, v]) => v !== undefined)
    .map(([key, v]) => ({ key, value: typeof v === 'string' ? v : canonicalJson(v) }));
}

function dedupe(items: KeyValue[]): KeyValue[] {
  const byKey = new Map<string, KeyValue>();
  for (const item of items) {
    byKey.delete(item.key);
    byKey.set(item.key, item);
  }
  return [...byKey.values()];
}
