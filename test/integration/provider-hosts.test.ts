import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { type ServerProcess, spawnServer } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';

/**
 * PROVIDER_ALLOWED_HOSTS end to end, on a server listening beyond loopback (HOST=0.0.0.0, open with
 * AUTH_DISABLED so no key is needed). The test still sends traffic to 127.0.0.1 only: it reaches
 * the 0.0.0.0 listener through the loopback address, and the model endpoint listens on 127.0.0.1.
 * With the list unset such a server lets providers call no host at all; with it set, only the
 * hosts it names, compared on the parsed URL.
 */

let db: TestDatabase;
let listener: FakeOpenAIServer;
let prompt: string;
let snapshot: string;

beforeAll(async () => {
  db = await createTestDatabase();
  listener = await startFakeOpenAIServer({});
});

afterAll(async () => {
  await listener?.close();
  await db?.cleanup();
});

/** `evalops serve` on 0.0.0.0; its URL rewritten to the loopback address. */
async function serveBeyondLoopback(env: Record<string, string>): Promise<{ server: ServerProcess; url: string }> {
  const server = await spawnServer({ ...db.env, HOST: '0.0.0.0', AUTH_DISABLED: 'true', ...env });
  const url = server.url.replace('//0.0.0.0:', '//127.0.0.1:');
  prompt = (await request(url, 'POST', '/v1/prompts', textPrompt('hosts'))).body.prompt_version;
  snapshot = (await uploadDataset(url, casesJsonl(2))).body.data_snapshot_id;
  return { server, url };
}

const submit = (url: string, base: string) => request(url, 'POST', '/v1/evaluations', { prompt_version: prompt, data_snapshot_id: snapshot, provider: { type: 'openai', base_url: base }, model: 'm' });

describe('a server beyond loopback', () => {
  it('with PROVIDER_ALLOWED_HOSTS unset, refuses every provider host with 422 naming the setting', async () => {
    const { server, url } = await serveBeyondLoopback({});
    try {
      const port = new URL(listener.url).port;
      for (const base of [listener.url, `http://localhost:${port}/v1`, 'https://api.openai.com/v1']) {
        const res = await submit(url, base);
        expect(res.status, JSON.stringify(res.body)).toBe(422);
        expect(res.body.error.code).toBe('NOT_ALLOWED');
        expect(res.body.error.message).toMatch(/^provider\.base_url: providers may not call host \S+: the server listens beyond loopback \(HOST=0\.0\.0\.0\), where providers may call only the hosts named in PROVIDER_ALLOWED_HOSTS, which is unset; add \S+ to PROVIDER_ALLOWED_HOSTS to allow it$/);
      }
      expect((await request(url, 'GET', '/v1/evaluations')).body.runs).toEqual([]);
      expect(listener.requests).toHaveLength(0);
    } finally {
      await server.stop();
    }
  });

  it('with the endpoint listed, runs against it and refuses look-alikes (user-info, other port, localhost)', async () => {
    const port = new URL(listener.url).port;
    const { server, url } = await serveBeyondLoopback({ PROVIDER_ALLOWED_HOSTS: `127.0.0.1:${port}` });
    try {
      for (const base of [`http://127.0.0.1:${port}@localhost:${port}/v1`, `http://localhost:${port}/v1`, `http://127.0.0.1:${Number(port) + 1}/v1`]) {
        const res = await submit(url, base);
        expect(res.status, `${base}: ${JSON.stringify(res.body)}`).toBe(422);
        expect(res.body.error.message).toContain(`is not in PROVIDER_ALLOWED_HOSTS (127.0.0.1:${port})`);
      }
      expect(listener.requests).toHaveLength(0);
      const ok = await submit(url, `HTTP://127.0.0.1.:${port}/v1`);
      expect(ok.status, JSON.stringify(ok.body)).toBe(202);
      const run = await waitForRun(url, ok.body.run_id);
      expect(run.status, run.error_message).toBe('succeeded');
      expect(listener.requests.length).toBe(2);
    } finally {
      await server.stop();
    }
  });
});
