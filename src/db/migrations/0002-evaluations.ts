import { type Kysely, sql } from 'kysely';

/**
 * Evaluations: prompt versions (immutable), dataset snapshots (metadata; the rows live
 * content-addressed under DATA_DIR/datasets/), evaluation runs, and the response record that makes
 * replay and crash-resume work across processes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per version; never updated. prompt_version = name || '@' || version.
  await sql`
    CREATE TABLE prompts (
      name text NOT NULL,
      version integer NOT NULL CHECK (version >= 1),
      description text,
      messages jsonb NOT NULL,
      params jsonb NOT NULL DEFAULT '{}'::jsonb,
      content_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (name, version)
    )`.execute(db);

  await sql`
    CREATE TABLE dataset_snapshots (
      snapshot_id text PRIMARY KEY CHECK (snapshot_id ~ '^sha256:[0-9a-f]{64}$'),
      name text,
      source_format text NOT NULL,
      row_count integer NOT NULL CHECK (row_count >= 0),
      byte_count bigint NOT NULL CHECK (byte_count >= 0),
      storage_path text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX dataset_snapshots_created_at_idx ON dataset_snapshots (created_at DESC)`.execute(db);

  await sql`
    CREATE TABLE evaluation_runs (
      run_id uuid PRIMARY KEY,
      job_id uuid,
      status text NOT NULL DEFAULT 'queued'
        CONSTRAINT evaluation_runs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      prompt_version text NOT NULL,
      data_snapshot_id text NOT NULL,
      provider_type text NOT NULL,
      model text NOT NULL,
      mode text NOT NULL CHECK (mode IN ('live', 'replay')),
      seed bigint NOT NULL,
      spec jsonb NOT NULL,
      rerun_of uuid,
      metadata jsonb,
      summary jsonb,
      thresholds_passed boolean,
      run_dir text,
      files jsonb,
      progress jsonb,
      mlflow jsonb,
      error_message text,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX evaluation_runs_created_at_idx ON evaluation_runs (created_at DESC, run_id DESC)`.execute(db);
  await sql`CREATE INDEX evaluation_runs_status_created_at_idx ON evaluation_runs (status, created_at DESC)`.execute(db);
  await sql`CREATE INDEX evaluation_runs_job_id_idx ON evaluation_runs (job_id)`.execute(db);

  // The response record: one row per request identity (responseCacheKey), shared by every process.
  // A row holds either an answer (output) or the last error; an answer is never replaced by an error.
  await sql`
    CREATE TABLE evaluation_responses (
      cache_key text PRIMARY KEY CHECK (cache_key ~ '^[0-9a-f]{64}$'),
      provider text NOT NULL,
      model text NOT NULL,
      output text,
      tokens jsonb,
      latency_ms integer NOT NULL DEFAULT 0,
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT evaluation_responses_outcome_check CHECK (output IS NOT NULL OR error IS NOT NULL)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE evaluation_responses`.execute(db);
  await sql`DROP TABLE evaluation_runs`.execute(db);
  await sql`DROP TABLE dataset_snapshots`.execute(db);
  await sql`DROP TABLE prompts`.execute(db);
}
