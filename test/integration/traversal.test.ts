import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { casesJsonl, textPrompt } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Downloads of run files (GET /v1/evaluations/:id/files/:name) cannot leave the run's folder:
 * dot segments, absolute paths, backslashes, NUL, single, double and overlong encodings, lookalike
 * characters, and symlinks placed inside the folder that point outside it (to a file, to a
 * directory, to another run, through a chain). Sent raw on the socket, so no client normalises them.
 */

let db: TestDatabase;
let server: TestServer;
let key: string;
let runId: string;
let runDir: string;
let otherRunDir: string;
const SENTINEL = 'TRAVERSAL-SENTINEL-8c1d';

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  key = (await server.api('POST', '/v1/admin/api-keys', { name: 'reader', scopes: ['admin'] })).body.key;
  const auth = { authorization: `Bearer ${key}` };
  await server.api('POST', '/v1/prompts', textPrompt('trav'), auth);
  const upload = await fetch(`${server.url}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...auth }, body: casesJsonl(2) });
  const snapshot = ((await upload.json()) as { data_snapshot_id: string }).data_snapshot_id;
  const runs: string[] = [];
  for (const seed of [1, 2]) {
    const res = await server.api('POST', '/v1/evaluations', { prompt_version: 'trav@1', data_snapshot_id: snapshot, provider: 'echo', seed }, auth);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    runs.push(res.body.run_id);
  }
  const finished = [];
  for (const id of runs) {
    for (let i = 0; i < 300; i++) {
      const run = await server.api('GET', `/v1/evaluations/${id}`, undefined, auth);
      if (['succeeded', 'failed'].includes(run.body.status)) {
        finished.push(run.body);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  expect(finished.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  [runId, runDir, otherRunDir] = [finished[0].run_id, finished[0].run_dir, finished[1].run_dir];

  // Targets outside the run folder, and links to them planted inside it.
  const outside = path.join(db.dataDir, 'outside');
  mkdirSync(outside, { recursive: true });
  writeFileSync(path.join(outside, 'secret.txt'), SENTINEL);
  writeFileSync(path.join(otherRunDir, 'private.json'), JSON.stringify({ s: SENTINEL }));
  symlinkSync('/etc/passwd', path.join(runDir, 'passwd-link.txt'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(runDir, 'secret-link.txt'));
  symlinkSync(outside, path.join(runDir, 'outside-dir'));
  symlinkSync(path.join(otherRunDir, 'private.json'), path.join(runDir, 'other-run.json'));
  symlinkSync(path.join(runDir, 'secret-link.txt'), path.join(runDir, 'chain-link.txt'));
  symlinkSync('../../outside/secret.txt', path.join(runDir, 'relative-link.txt'));
});

afterAll(async () => {
  await server?.close(1000);
  await db?.cleanup();
});

/** GET with the path exactly as given (no URL normalisation). */
function rawGet(rawPath: string, method = 'GET'): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: rawPath, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('run file downloads stay in the run folder', () => {
  it('serves a plain file of the run', async () => {
    const ok = await rawGet(`/v1/evaluations/${runId}/files/results.jsonl`);
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(readFileSync(path.join(runDir, 'results.jsonl'), 'utf8'));
  });

  it('refuses every escape: dot segments, absolute paths, encodings, NUL, lookalikes, symlinks', async () => {
    const names = [
      // dot segments and absolute paths, plain and percent-encoded
      '..', '.', '../outside/secret.txt', '..%2F..%2Foutside%2Fsecret.txt', '%2e%2e', '%2e%2e%2f%2e%2e%2fserver.json', '%2E%2E%2F%2E%2E%2Fserver.json',
      '%2Fetc%2Fpasswd', '%2F%2Fetc%2Fpasswd', `%2F${encodeURIComponent(path.join(db.dataDir, 'outside', 'secret.txt')).slice(3)}`,
      // double encoding (decoded once by the server: must stay a literal, harmless name)
      '%252e%252e%252f%252e%252e%252fserver.json', '%252Fetc%252Fpasswd', '..%252F..%252Fserver.json',
      // backslashes, NUL, overlong UTF-8, fullwidth and other lookalike dots and slashes
      '..%5C..%5Cserver.json', '..\\..\\server.json', 'results.jsonl%00.txt', '%00', '%c0%ae%c0%ae%c0%afserver.json', '%e0%80%ae%e0%80%ae',
      '%EF%BC%8E%EF%BC%8E%EF%BC%8Fserver.json', '%E2%80%A4%E2%80%A4%E2%88%95server.json', '.%2e/server.json', '.hidden',
      // links planted inside the folder pointing outside it
      'passwd-link.txt', 'secret-link.txt', 'outside-dir', 'outside-dir%2Fsecret.txt', 'other-run.json', 'chain-link.txt', 'relative-link.txt',
    ];
    const answers: string[] = [];
    for (const name of names) {
      for (const method of ['GET', 'HEAD']) {
        const res = await rawGet(`/v1/evaluations/${runId}/files/${name}`, method);
        answers.push(`${method} ${name} -> ${res.status}`);
        expect([400, 404], `${method} ${name}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
        expect(res.text).not.toContain(SENTINEL);
        expect(res.text).not.toMatch(/root:.*:0:0:|"token"/);
      }
    }
    // Unnormalised dot segments straight on the socket, in the name and in the run id.
    for (const raw of [
      `/v1/evaluations/${runId}/files/../../../../etc/passwd`,
      `/v1/evaluations/${runId}/files/./../${path.basename(otherRunDir)}/private.json`,
      `/v1/evaluations/${runId}/../${path.basename(otherRunDir)}/files/private.json`,
      '/v1/evaluations/..%2F..%2Foutside/files/secret.txt',
      `/v1/evaluations/${runId}%2F..%2F${path.basename(otherRunDir)}/files/private.json`,
      `/v1/evaluations/${encodeURIComponent(runDir)}/files/results.jsonl`,
    ]) {
      const res = await rawGet(raw);
      answers.push(`GET ${raw} -> ${res.status}`);
      expect([400, 404], `${raw}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
      expect(res.text).not.toContain(SENTINEL);
    }
    // The file listing does not follow the links out either.
    const listing = await rawGet(`/v1/evaluations/${runId}/files`);
    expect(listing.status).toBe(200);
    expect(listing.text).not.toMatch(/passwd-link|secret-link|outside-dir|other-run|chain-link|relative-link/);
    console.log(`traversal: ${answers.length} attempts refused`);
  });
});
