import { randomUUID } from 'node:crypto';

/**
 * The raw-SQL baseline of the jobs benchmark: each of N concurrent clients loops the three
 * statements a job needs (INSERT it, claim one queued row with FOR UPDATE SKIP LOCKED, mark it
 * done), each statement in its own implicit transaction, on a table shaped like `jobs`.
 */

/** The least a driver must offer: pg.Client and PGlite both fit. */
export interface SqlClient {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** DDL for a baseline table `name` with the columns, defaults and checks of `jobs` (which must exist). */
export function baselineTableDdl(name: string, variant: 'minimal' | 'full'): string[] {
  if (variant === 'minimal') {
    // The brief's baseline: same columns, the primary key and the partial claim index, nothing else.
    return [
      `CREATE TABLE ${name} (LIKE jobs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
      `ALTER TABLE ${name} ADD PRIMARY KEY (job_id)`,
      `CREATE INDEX ${name}_claim_idx ON ${name} (priority DESC, run_at, created_at) WHERE status = 'queued'`,
    ];
  }
  // Every index of the migrated table plus a NOTIFY trigger of the same body and WHEN clause on a
  // channel nobody listens to (the service's runner listens on evalops_jobs and must not be woken
  // by the baseline). The raw clients do not set evalops.skip_notify: each INSERT notifies.
  return [
    `CREATE TABLE ${name} (LIKE jobs INCLUDING ALL)`,
    `CREATE OR REPLACE FUNCTION ${name}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.status = 'queued' THEN
         PERFORM pg_notify('${name}', '');
       ELSIF NEW.status = 'running' AND NEW.cancel_requested_at IS NOT NULL
             AND (TG_OP = 'INSERT' OR OLD.cancel_requested_at IS NULL) THEN
         PERFORM pg_notify('${name}_cancel', NEW.job_id::text);
       END IF;
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER ${name}_notify AFTER INSERT OR UPDATE OF status, cancel_requested_at ON ${name}
     FOR EACH ROW
     WHEN ((NEW.status = 'queued' AND current_setting('evalops.skip_notify', true) IS DISTINCT FROM 'on')
           OR (NEW.status = 'running' AND NEW.cancel_requested_at IS NOT NULL))
     EXECUTE FUNCTION ${name}_notify()`,
  ];
}

function statements(table: string) {
  return {
    insert: `INSERT INTO ${table} (job_id, type, payload, max_attempts, priority) VALUES ($1, 'noop', '{}'::jsonb, 3, 0)`,
    claim: `UPDATE ${table} SET status = 'running', attempts = attempts + 1, locked_by = $1,
              lease_expires_at = now() + INTERVAL '15 seconds', started_at = now(), updated_at = now()
            WHERE job_id = (
              SELECT job_id FROM ${table}
              WHERE status = 'queued' AND run_at <= now()
              ORDER BY priority DESC, run_at, created_at
              LIMIT 1
              FOR UPDATE SKIP LOCKED)
            RETURNING job_id`,
    done: `UPDATE ${table} SET status = 'succeeded', result = '{"ok":true}'::jsonb, finished_at = now(), updated_at = now(),
             locked_by = NULL, lease_expires_at = NULL
           WHERE job_id = $1 AND status = 'running'`,
  };
}

/**
 * Pushes `total` jobs through `table` with one loop per client; resolves to the elapsed seconds
 * from the first statement until the last job is done. Rejects past `timeoutMs`.
 */
export async function runRawQueue(clients: readonly SqlClient[], table: string, total: number, timeoutMs: number): Promise<number> {
  const sql = statements(table);
  let inserted = 0;
  let done = 0;
  const deadline = Date.now() + timeoutMs;
  const loop = async (client: SqlClient, index: number) => {
    const workerId = `bench-raw-${index}`;
    while (done < total) {
      if (Date.now() > deadline) throw new Error(`raw SQL queue on ${table}: ${done} of ${total} jobs done after ${timeoutMs} ms`);
      if (inserted < total) {
        inserted++;
        await client.query(sql.insert, [randomUUID()]);
      }
      const { rows } = await client.query(sql.claim, [workerId]);
      const row = rows[0] as { job_id: string } | undefined;
      if (row) {
        await client.query(sql.done, [row.job_id]);
        done++;
      } else if (inserted >= total) {
        // Every remaining row is held by another client; let it finish.
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  const started = performance.now();
  await Promise.all(clients.map((c, i) => loop(c, i)));
  return (performance.now() - started) / 1000;
}
