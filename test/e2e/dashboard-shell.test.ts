import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The dashboard's shell: served by the API at its page URLs, assets from the same server, public
// while the API behind it keeps its auth; a key entered in the page is what it then uses.
describe('dashboard shell', () => {
  let db: TestDatabase;
  let server: TestServer;
  let session: BrowserSession | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db);
  });
  afterAll(async () => {
    await session?.close();
    await server?.close();
    await db?.cleanup();
  });

  it('serves the page shell at every page URL and its assets with long caching, and keeps unknown URLs 404 JSON', async () => {
    for (const route of ['/', '/jobs', '/jobs/0b9c6c1e-0000-4000-8000-000000000000', '/evaluations', '/compare', '/prompts', '/datasets']) {
      const res = await fetch(`${server.url}${route}`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status, route).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      expect(html).toContain('<div id="app"></div>');
      const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script).toBeDefined();
      const asset = await fetch(`${server.url}${script}`, { signal: AbortSignal.timeout(10_000) });
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toContain('immutable');
    }
    const unknown = await server.api('GET', '/no-such-page');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const missingAsset = await server.api('GET', '/assets/nothing.js');
    expect(missingAsset.status).toBe(404);
  });

  it('renders the navigation in Chromium with no console error', async () => {
    session = await openBrowser({ baseUrl: server.url });
    const { page } = session;
    await page.goto('/');
    await expect.poll(() => page.locator('header.top nav a').allTextContents()).toEqual(['Overview', 'Jobs', 'Evaluations', 'Compare', 'Prompts', 'Datasets']);
    await page.click('header.top nav a:text("Jobs")');
    await expect.poll(() => page.url()).toBe(`${server.url}/jobs`);
    await expect.poll(() => page.title()).toBe('Jobs · evalops');
    expect(session.problems).toEqual([]);
  });
});
