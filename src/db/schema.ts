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

export interface Database {
  jobs: JobsTable;
}

export type JobRow = Selectable<JobsTable>;
export type NewJobRow = Insertable<JobsTable>;
export type { Generated };
