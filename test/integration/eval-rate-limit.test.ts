import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateGates } from '../../src/evals/rate-gate.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl, request, textPrompt, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The shared request-rate limit of a provider (`requests_per_minute`): kept in Redis, it holds for
 * every process that calls the endpoint, as queue-mode workers do.
 */

const REDIS_URL = process.env.EVALOPS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `evalops-test-${randomBytes(4).toString('hex')}`;
let db: TestDatabase;
let openai: FakeOpenAIServer;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer();
  server = await startTestServer(db, { REDIS_URL, QUEUE_PREFIX: prefix });
});

afterAll(async () => {
  await server?.close(2000);
  await openai?.close();
  await db?.cleanup();
});

describe('requests_per_minute', () => {
  it('is one schedule for two processes sharing Redis: a burst of one second, then the rate', async () => {
    const a = new RateGates({ redisUrl: REDIS_URL, prefix });
    const b = new RateGates({ redisUrl: REDIS_URL, prefix });
    try {
      const config = { type: 'openai' as const, base_url: 'http://shared.example/v1', requests_per_minute: 1200 };
      const gates = [a.gateFor(config)!, b.gateFor(config)!];
      const started = performance.now();
      const times: number[] = [];
      // 60 requests, alternating between the two "workers": 20 fit the one-second burst, 40 more at 50 ms each.
      await Promise.all(Array.from({ length: 60 }, (_, i) => gates[i % 2]!.wait().then(() => times.push(performance.now() - started))));
      times.sort((x, y) => x - y);
      expect(times[19]!).toBeLessThan(600);
      expect(times[59]!).toBeGreaterThanOrEqual(1800);
      expect(times[59]!).toBeLessThan(4000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('spaces the requests of an evaluation run', async () => {
    await request(server.url, 'POST', '/v1/prompts', textPrompt('limited'));
    const snapshot = (await uploadDataset(server.url, casesJsonl(25, 'limited'))).body.data_snapshot_id;
    const before = openai.requests.length;
    const started = Date.now();
    const res = await request(server.url, 'POST', '/v1/evaluations', {
      prompt_version: 'limited@1',
      data_snapshot_id: snapshot,
      provider: { type: 'openai', base_url: openai.url, requests_per_minute: 600 },
      model: 'gpt-limited',
      concurrency: 10,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const run = await waitForRun(server.url, res.body.run_id);
    expect(run.status, run.error_message).toBe('succeeded');
    expect(openai.requests.length - before).toBe(25);
    // 600/min: a burst of 10, then 15 more at 100 ms each.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });
});
