import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Job status values; the table's check constraint holds the same list. */
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json = ColumnType<unknown, string | undefined, string>;
type NullableJson = ColumnType<unknown | null, string | null | undefined, string | null>;

export interface JobsTable {
  job_id: string;
  type: string;
  status: ColumnType<JobStatus, JobStatus | undefined, JobStatus>;
  payload: Json;
  result: NullableJson;
  error_message: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  priority: ColumnType<number, number | undefined, number>;
  run_at: Timestamp;
  /** The run_at the submit named, null when it named none (run_at itself moves on retries): idempotency compares it. */
  requested_run_at: NullableTimestamp;
  idempotency_key: string | null;
  cancel_requested_at: NullableTimestamp;
  locked_by: string | null;
  lease_expires_at: NullableTimestamp;
  progress: NullableJson;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  updated_at: Timestamp;
}

/** Immutable prompt versions; `prompt_version` is `name@version`. */
export interface PromptsTable {
  name: string;
  version: number;
  description: string | null;
  messages: Json;
  params: Json;
  content_hash: string;
  created_at: Timestamp;
}

/** Dataset snapshot metadata; the canonical JSONL lives at `storage_path` (relative to DATA_DIR). */
export interface DatasetSnapshotsTable {
  snapshot_id: string;
  name: string | null;
  source_format: string;
  row_count: number;
  byte_count: number;
  storage_path: string;
  created_at: Timestamp;
}

export interface EvaluationRunsTable {
  run_id: string;
  job_id: string | null;
  status: ColumnType<JobStatus, JobStatus | undefined, JobStatus>;
  prompt_version: string;
  data_snapshot_id: string;
  provider_type: string;
  model: string;
  mode: 'live' | 'replay';
  seed: number;
  spec: Json;
  rerun_of: string | null;
  metadata: NullableJson;
  summary: NullableJson;
  thresholds_passed: boolean | null;
  run_dir: string | null;
  files: NullableJson;
  progress: NullableJson;
  mlflow: NullableJson;
  error_message: string | null;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  updated_at: Timestamp;
}

/** The response record behind live/replay: one row per request identity (cache key). */
export interface EvaluationResponsesTable {
  cache_key: string;
  provider: string;
  model: string;
  output: string | null;
  tokens: NullableJson;
  latency_ms: ColumnType<number, number | undefined, number>;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface Database {
  jobs: JobsTable;
  prompts: PromptsTable;
  dataset_snapshots: DatasetSnapshotsTable;
  evaluation_runs: EvaluationRunsTable;
  evaluation_responses: EvaluationResponsesTable;
  api_keys: ApiKeysTable;
  runtime_limits: RuntimeLimitsTable;
  request_counts: RequestCountsTable;
  incidents: IncidentsTable;
  incident_events: IncidentEventsTable;
}

/** API keys: only the SHA-256 of a key is stored; `prefix` (its first characters) identifies it. */
export interface ApiKeysTable {
  key_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  scopes: string[];
  created_by: string | null;
  created_at: Timestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  revoked_by: string | null;
}

/** Limits an operator set at runtime (`evalops limits set`); a missing row means the configured default. */
export interface RuntimeLimitsTable {
  name: string;
  value: number;
  updated_at: Timestamp;
  updated_by: string | null;
}

/** Requests one API process answered in one minute, by route class and status (the availability SLI). */
export interface RequestCountsTable {
  minute: Timestamp;
  instance_id: string;
  route_class: string;
  status_code: number;
  requests: number;
  duration_ms_sum: number;
  /** Counts per latency bucket; the bounds are REQUEST_DURATION_BUCKETS_MS in src/obs/request-counter.ts. */
  duration_buckets: number[];
  updated_at: Timestamp;
}

/** An incident, from `evalops incident start` to `incident end`; its messages are in incident_events. */
export interface IncidentsTable {
  incident_id: Generated<number>;
  severity: 'P1' | 'P2';
  summary: string;
  status: ColumnType<'open' | 'resolved', 'open' | 'resolved' | undefined, 'open' | 'resolved'>;
  phase: ColumnType<string, string | undefined, string>;
  started_at: Timestamp;
  ended_at: NullableTimestamp;
  impact: Json;
  affected: Json;
  mitigation: Json;
  root_cause: string | null;
  resolution: string | null;
  prevention: Json;
  postmortem_due_at: NullableTimestamp;
  postmortem: NullableJson;
  created_by: string | null;
  updated_at: Timestamp;
}

/** One message of an incident's timeline, as it was sent. */
export interface IncidentEventsTable {
  event_id: Generated<number>;
  incident_id: number;
  at: Timestamp;
  kind: 'start' | 'update' | 'end';
  summary: string;
  message: Json;
  actor: string | null;
}

export type JobRow = Selectable<JobsTable>;
export type NewJobRow = Insertable<JobsTable>;
export type { Generated };
