import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, uploadDataset } from '../helpers/eval-helpers.ts';
import { spawnServer, waitFor, type ServerProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * Every dataset upload is finished or cleaned up on every error path: the client cutting the
 * connection, a Content-Length shorter or longer than the body, a parse error in the middle of the
 * stream, a full disk. Checked on a spawned server by counting its open descriptors
 * (/proc/<pid>/fd) and the temp files under DATA_DIR/datasets before and after.
 */

let db: TestDatabase;
let server: ServerProcess;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await spawnServer({ ...db.env, DATASET_UPLOAD_LIMIT_BYTES: '1000000', DATASET_UPLOAD_IDLE_MS: '700' });
  port = Number(new URL(server.url).port);
  // Warm up: the first upload opens the folder and whatever the server opens lazily.
  expect((await uploadDataset(server.url, '{"id":"warm","vars":{"q":1}}\n')).status).toBe(201);
  expect((await uploadDataset(server.url, 'id,q\nwarm,1\n', 'text/csv')).status).toBeLessThan(300);
});

afterAll(async () => {
  await server?.stop('SIGTERM', 10_000);
  await db?.cleanup();
});

const datasetsDir = () => path.join(db.dataDir, 'datasets');
const tempFiles = () => readdirSync(datasetsDir()).filter((f) => f.endsWith('.tmp'));
/** The server's open descriptors that are files (sockets come and go with keep-alive). */
const openFiles = () =>
  readdirSync(`/proc/${server.proc.pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${server.proc.pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((target) => target.startsWith('/'));
const openUploads = () => openFiles().filter((target) => target.includes(`${path.sep}datasets${path.sep}`));
const fdCount = () => readdirSync(`/proc/${server.proc.pid}/fd`).length;

const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, vars: { q: 'x'.repeat(40) } })).join('\n') + '\n';

/** Writes a raw request, then closes the socket after `closeAfterMs`; resolves to the status line (if any). */
function rawUpload(head: { contentLength: number; type?: string }, body: string | Buffer, closeAfterMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${head.type ?? 'application/x-ndjson'}\r\nContent-Length: ${head.contentLength}\r\n\r\n`);
      socket.write(body);
      setTimeout(() => socket.destroy(), closeAfterMs);
    });
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
  });
}

/** Runs `attempt` four times and checks the server holds no more descriptors or temp files than before. */
async function leavesNothingBehind(attempt: () => Promise<unknown>): Promise<void> {
  const [fds, temps, uploads] = [fdCount(), tempFiles(), openUploads()];
  for (let i = 0; i < 4; i += 1) await attempt();
  // Bounded wait: the server closes its side after the client's socket is gone.
  await waitFor('the upload descriptors to close', async () => openUploads().length <= uploads.length && tempFiles().length === temps.length && fdCount() <= fds, 10_000).catch(() => undefined);
  expect(openUploads()).toEqual(uploads);
  expect(tempFiles()).toEqual(temps);
  expect(fdCount()).toBeLessThanOrEqual(fds);
  // And the server still takes uploads.
  expect((await uploadDataset(server.url, rows(3))).status).toBeLessThan(300);
}

describe('dataset uploads clean up on every error path (descriptors of the spawned server, temp files)', () => {
  it('a Content-Length shorter than the body (it leaked one descriptor and one temp file per request)', async () => {
    await leavesNothingBehind(async () => expect(await rawUpload({ contentLength: 100 }, rows(200), 500)).toMatch(/^HTTP\/1\.1 4\d\d/));
  });

  it('a Content-Length longer than the body, the client giving up', async () => {
    const body = rows(200);
    await leavesNothingBehind(() => rawUpload({ contentLength: body.length + 1000 }, body, 300));
  });

  it('a client that stops sending but keeps the connection open: 400 after DATASET_UPLOAD_IDLE_MS, connection closed (it waited forever)', async () => {
    const body = rows(200);
    // The client would wait 5 s; the server answers after 0.7 s of silence and closes the connection.
    await leavesNothingBehind(async () => expect(await rawUpload({ contentLength: body.length + 1000 }, body, 5000)).toMatch(/^HTTP\/1\.1 400/));
  });

  it('the client closing the connection in the middle of the upload', async () => {
    const body = rows(2000);
    await leavesNothingBehind(() => rawUpload({ contentLength: body.length }, body.slice(0, 20_000), 300));
  });

  it('a parse error in the middle of the stream (invalid JSON, invalid UTF-8, an unclosed CSV quote)', async () => {
    const broken = `${rows(500)}{"id":"bad",\n${rows(500).replace(/"r(\d+)"/g, '"s$1"')}`;
    await leavesNothingBehind(async () => expect((await uploadDataset(server.url, broken)).status).toBe(400));
    const invalid = Buffer.concat([Buffer.from(rows(500)), Buffer.from([0xc3, 0x28]), Buffer.from(rows(5).replace(/"r/g, '"u'))]);
    await leavesNothingBehind(async () => expect((await uploadDataset(server.url, invalid as unknown as string)).status).toBe(400));
    await leavesNothingBehind(async () => expect((await uploadDataset(server.url, `id,q\n1,"open\n${'2,x\n'.repeat(500)}`, 'text/csv')).status).toBe(400));
  });

  it('a full disk (a 64 KiB tmpfs as DATA_DIR/datasets): 503 naming ENOSPC, nothing half-written', async (context) => {
    if (process.getuid?.() !== 0) return context.skip('mounting a tmpfs needs root');
    const mounted = path.join(db.dataDir, 'datasets');
    mkdirSync(mounted, { recursive: true });
    const before = readdirSync(mounted);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mounted]);
    } catch (error) {
      return context.skip(`cannot mount a tmpfs here: ${(error as Error).message}`);
    }
    try {
      const body = rows(3000);
      await leavesNothingBehind(async () => {
        const res = await uploadDataset(server.url, body);
        expect(res.status, res.text).toBe(503);
        expect(res.body.error.message).toMatch(/ENOSPC/);
        expect(res.body.error.message).toContain('DATA_DIR');
        expect(res.body.error.error_id).toEqual(expect.any(String));
      });
    } finally {
      execFileSync('umount', ['-l', mounted]);
    }
    expect(readdirSync(mounted)).toEqual(before);
    expect((await request(server.url, 'GET', '/health')).status).toBe(200);
  });
});
