import { type Kysely, sql } from 'kysely';

/**
 * Access control: API keys (only a SHA-256 of each key is stored, with its first characters in clear
 * so an operator can tell keys apart) and the runtime limits an operator changes without a restart.
 * Both tables notify on change, so every API process drops its cached view at once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE api_keys (
      key_id uuid PRIMARY KEY,
      name text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
      prefix text NOT NULL,
      key_hash text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
      scopes text[] NOT NULL,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz,
      revoked_by text
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash)`.execute(db);
  // A name identifies one live key; a revoked key's name may be reused.
  await sql`CREATE UNIQUE INDEX api_keys_active_name_key ON api_keys (name) WHERE revoked_at IS NULL`.execute(db);

  await sql`
    CREATE TABLE runtime_limits (
      name text PRIMARY KEY CHECK (name ~ '^[a-z][A-Za-z0-9_.:-]{0,150}$'),
      value bigint NOT NULL CHECK (value >= 0),
      updated_at timestamptz NOT NULL DEFAULT now(),
      updated_by text
    )`.execute(db);

  // last_used_at is bookkeeping: changing it must not make every process drop its key cache.
  await sql`
    CREATE FUNCTION evalops_api_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('evalops_api_keys', '');
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER api_keys_notify AFTER INSERT OR DELETE OR UPDATE OF revoked_at, scopes, name, key_hash ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION evalops_api_keys_notify()`.execute(db);

  await sql`
    CREATE FUNCTION evalops_limits_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('evalops_limits', '');
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER runtime_limits_notify AFTER INSERT OR UPDATE OR DELETE ON runtime_limits
    FOR EACH STATEMENT EXECUTE FUNCTION evalops_limits_notify()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE runtime_limits`.execute(db);
  await sql`DROP TABLE api_keys`.execute(db);
  await sql`DROP FUNCTION evalops_limits_notify()`.execute(db);
  await sql`DROP FUNCTION evalops_api_keys_notify()`.execute(db);
}
