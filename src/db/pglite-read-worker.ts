import { parentPort, workerData } from 'node:worker_threads';

/** What the runner sends: a snapshot directory to open and the checked statement to run there. */
export interface WorkerRequest {
  dataDir: string;
  /** PGlite's module URL, resolved by the runner: a worker's own resolution would start from elsewhere. */
  pgliteUrl: string;
  text: string;
  role: string;
  roleSql: string;
}

/** `running` once the snapshot is open (the timeout starts), then a result or an error. */
export type WorkerReply =
  | { kind: 'running' }
  /** The result table as JSON (`{columns, rows}`), serialized here rather than on the server's event loop. */
  | { kind: 'result'; json: Uint8Array }
  | { kind: 'error'; message: string };

// Runs only as the worker of read-statement-runner.ts, on a copy of the embedded database.
if (parentPort && workerData) {
  const port = parentPort;
  const request = workerData as WorkerRequest;
  const send = (reply: WorkerReply) => port.postMessage(reply);
  try {
    const { PGlite } = (await import(request.pgliteUrl)) as typeof import('@electric-sql/pglite');
    const pglite = await PGlite.create(request.dataDir, { parsers: { 20: (value: string) => Number(value) } });
    send({ kind: 'running' });
    const result = await pglite.transaction(async (tx) => {
      await tx.exec('SET TRANSACTION READ ONLY');
      const role = await tx.query<{ usable: boolean }>(request.roleSql);
      if (role.rows[0]?.usable) await tx.exec(`SET LOCAL ROLE ${request.role}`);
      const r = await tx.query<unknown[]>(request.text, [], { rowMode: 'array' });
      await tx.rollback();
      return r;
    });
    const json = new TextEncoder().encode(JSON.stringify({ columns: result.fields.map((f) => f.name), rows: result.rows }));
    port.postMessage({ kind: 'result', json } satisfies WorkerReply, [json.buffer as ArrayBuffer]);
  } catch (err) {
    send({ kind: 'error', message: (err as Error).message });
  }
}
