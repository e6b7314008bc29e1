import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { DASHBOARD_ENV, extraScreenshot, submitJob, untilStatus } from '../helpers/dashboard-fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// With API keys on, the dashboard asks for one when the API answers 401, and the key entered in the
// page is what makes the data load (the pages themselves hold no data and stay public).
describe('dashboard with API keys', () => {
  let db: TestDatabase;
  let server: TestServer;
  let session: BrowserSession | undefined;
  let readerKey = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db, DASHBOARD_ENV);
    // The first key is made on the open server; from then on every API request needs one.
    const admin = await server.api('POST', '/v1/admin/api-keys', { name: 'ops-admin', scopes: ['admin'] });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    const auth = { authorization: `Bearer ${admin.body.key}` };
    const reader = await server.api('POST', '/v1/admin/api-keys', { name: 'dashboard', scopes: ['read', 'jobs:write'] }, auth);
    expect(reader.status).toBe(201);
    readerKey = reader.body.key;
    expect((await server.api('GET', '/v1/jobs')).status).toBe(401);
    for (let i = 0; i < 2; i++) await untilStatus(server, await submitJob(server, { type: 'noop' }, auth), ['succeeded'], 20_000, auth);
  });

  afterAll(async () => {
    await session?.close();
    await server?.close(2000);
    await db?.cleanup();
  });

  it('prompts for a key on 401, and loads the data with the key entered', async () => {
    session = await openBrowser({ baseUrl: server.url });
    const { page } = session;
    await page.goto('/');

    // The health report is public; the rest asks for a key.
    await expect.poll(() => page.locator('.key-form .warn').textContent()).toContain('The API needs a key');
    await expect.poll(() => page.locator('[data-component="database"] .badge').textContent()).toBe('healthy');
    await expect.poll(() => page.locator('section[aria-label="service level objectives"] .error-box').textContent()).toContain('401 UNAUTHORIZED');

    // A wrong key: refused, and the prompt comes back.
    await page.fill('input[name="api-key"]', `evk_${'A'.repeat(43)}`);
    await page.click('.key-form button[type="submit"]');
    await expect.poll(() => page.locator('section[aria-label="service level objectives"] .error-box').textContent()).toContain('unknown API key');
    await expect.poll(() => page.locator('.key-form .warn').count()).toBe(1);

    // The right key: the data loads, the prompt goes away, the key is kept for the next pages.
    await page.fill('input[name="api-key"]', readerKey);
    await page.click('.key-form button[type="submit"]');
    await expect.poll(() => page.locator('tr[data-slo]').count()).toBe(3);
    await expect.poll(() => page.locator('.job-status-bars[data-since="1h"] figcaption').textContent()).toBe('Jobs created in the last hour: 2');
    await expect.poll(() => page.locator('.request-totals').count()).toBe(1);
    expect(await page.locator('.key-form').count()).toBe(0);
    expect(await page.locator('.error-box').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).localStorage.getItem('evalops.apiKey'))).toBe(readerKey);

    // Every problem so far is the browser reporting the 401 answers to the requests made without a
    // key or with the wrong one; from here on there may be none at all.
    const refused = session.problems.splice(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const problem of refused) expect(problem).toMatch(/^console error: Failed to load resource: the server responded with a status of 401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/v1\//);

    await page.click('header.top nav a:text("Jobs")');
    await expect.poll(() => page.locator('tr[data-job-id]').count()).toBe(2);
    await extraScreenshot(session, 'jobs-with-key');
    expect(session.problems).toEqual([]);
  });
});
