import { type Kysely, sql } from 'kysely';

/**
 * `evalops_sql_reader`: the role `evalops sql` switches to (SET LOCAL ROLE) for the operator's
 * statement. It holds pg_read_all_data and nothing else: no login, no file access, no signalling of
 * other sessions, no writes, whatever the connecting user may do.
 *
 * Roles belong to the whole cluster, not to a database, so several databases of one server may
 * migrate at once: the role may appear between the existence check and CREATE ROLE (a
 * duplicate_object or, from the catalog's unique index, a unique_violation), and a grant may race
 * another identical grant. Both mean "already there". A connecting user without CREATEROLE (or
 * without the right to grant pg_read_all_data) gets a NOTICE and no role: `evalops sql` then runs as
 * that user, still behind its function list (src/db/read-statement-rules.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await createSqlReaderRole(db, 'evalops_sql_reader');
}

/** Creates `role` (a plain lower-case identifier) as described above; safe to run concurrently. */
export async function createSqlReaderRole(db: Kysely<unknown>, role: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new Error(`not a plain role name: ${role}`);
  const body = `
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
        BEGIN
          CREATE ROLE ${role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        EXCEPTION
          WHEN duplicate_object OR unique_violation THEN NULL;
          WHEN insufficient_privilege THEN
            RAISE NOTICE '${role} not created (% lacks CREATEROLE): evalops sql runs as that user, behind its function list', current_user;
            RETURN;
        END;
      END IF;
      BEGIN
        GRANT pg_read_all_data TO ${role};
      EXCEPTION
        WHEN unique_violation OR duplicate_object THEN NULL;
        WHEN insufficient_privilege THEN
          RAISE NOTICE 'pg_read_all_data not granted to ${role} (%): evalops sql runs as %, behind its function list', SQLERRM, current_user;
          RETURN;
      END;
      BEGIN
        -- SET ROLE is checked against the session user: the connecting user must be a member.
        GRANT ${role} TO CURRENT_USER;
      EXCEPTION
        WHEN unique_violation OR duplicate_object THEN NULL;
        WHEN insufficient_privilege THEN
          RAISE NOTICE '${role} not granted to % (%): evalops sql runs as that user, behind its function list', current_user, SQLERRM;
      END;
    END`;
  await sql`DO ${sql.raw(`$$${body}$$`)}`.execute(db);
}

/** The role stays: other databases of the same server may use it. */
export async function down(): Promise<void> {}
