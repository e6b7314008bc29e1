import type { FastifyPluginAsync } from 'fastify';
import { expect } from 'vitest';
import { z } from 'zod';
import type { JobHandler } from '../../src/jobs/handler-registry.ts';
import type { BrowserSession } from './browser.ts';
import { waitFor } from './processes.ts';
import type { TestServer } from './test-server.ts';

/**
 * Data for the dashboard's browser tests: a job type that always fails (so a job ends `failed` after
 * its attempts), a route that always answers 500 (so the 5xx figures are not zero), and helpers to
 * submit jobs and wait for them through the API.
 */

/** Fails every attempt with a message naming it. */
export const failingHandler: JobHandler<{ reason?: string | undefined }> = {
  type: 'always_fails',
  description: 'fails every attempt (dashboard tests)',
  payloadSchema: z.object({ reason: z.string().optional() }),
  async run(payload) {
    throw new Error(payload.reason ?? 'planned failure');
  },
};

/** `GET /v1/test/fail`: always 500. */
export const failingRoute: FastifyPluginAsync = async (app) => {
  app.get('/v1/test/fail', async () => {
    throw new Error('injected failure for the dashboard test');
  });
};

/**
 * Written often, so the request chart has the requests of the test within the second; load
 * shedding stays off as in every test server.
 */
export const DASHBOARD_ENV = { SLI_FLUSH_MS: '200' };

export async function submitJob(server: TestServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<string> {
  const res = await server.api('POST', '/v1/jobs', body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.job_id as string;
}

/** Waits (bounded) until the job is in one of `statuses`; its API view. */
export function untilStatus(server: TestServer, id: string, statuses: string[], timeoutMs = 20_000, headers: Record<string, string> = {}): Promise<any> {
  return waitFor(
    `job ${id} to reach ${statuses.join('/')}`,
    async () => {
      const { body } = await server.api('GET', `/v1/jobs/${id}`, undefined, headers);
      return statuses.includes(body.status) ? body : undefined;
    },
    timeoutMs,
  );
}

/**
 * A screenshot for looking into a run (in the temporary folder); skipped when the run refreshes the
 * README's screenshots (EVALOPS_SCREENSHOTS=docs), so docs/screenshots holds only those.
 */
export async function extraScreenshot(session: BrowserSession, name: string): Promise<void> {
  if (process.env.EVALOPS_SCREENSHOTS !== 'docs') await session.screenshot(name);
}
