import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { DASHBOARD_ENV, failingHandler, failingRoute, submitJob, untilStatus } from '../helpers/dashboard-fixtures.ts';
import { waitFor } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The overview against a real server holding known data: components with their status and probe
// latency, the SLOs with their budget, the job status distribution matching the jobs created, the
// request charts drawn, and a page that reads everything again by itself.
describe('dashboard overview', () => {
  let db: TestDatabase;
  let server: TestServer;
  let session: BrowserSession | undefined;
  const long: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db, DASHBOARD_ENV, { handlers: [failingHandler], routes: failingRoute });

    // 5 succeeded, 1 failed, 2 running, 1 queued (due in an hour), 1 cancelled.
    const noops = await Promise.all(Array.from({ length: 5 }, () => submitJob(server, { type: 'noop' })));
    const failing = await submitJob(server, { type: 'always_fails', payload: { reason: 'the model endpoint refused' }, max_attempts: 2 });
    for (let i = 0; i < 2; i++) long.push(await submitJob(server, { type: 'sleep', payload: { ms: 600_000 } }));
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await submitJob(server, { type: 'sleep', payload: { ms: 10 }, run_at: later });
    const cancelled = await submitJob(server, { type: 'sleep', payload: { ms: 10 }, run_at: later });
    expect((await server.api('POST', `/v1/jobs/${cancelled}/cancel`)).status).toBe(202);
    for (const id of noops) await untilStatus(server, id, ['succeeded']);
    await untilStatus(server, failing, ['failed']);
    for (const id of long) await untilStatus(server, id, ['running']);

    // Some traffic, 3 answers of it 5xx; wait until the counts are written.
    for (let i = 0; i < 20; i++) expect((await server.api('GET', '/v1/jobs?limit=1')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await server.api('GET', '/v1/test/fail')).status).toBe(500);
    await waitFor('the 3 errors to be written', async () => (await server.api('GET', '/v1/slo/requests?since=1h')).body.totals.errors_5xx === 3, 15_000);
  });

  afterAll(async () => {
    await session?.close();
    for (const id of long) await server?.api('POST', `/v1/jobs/${id}/cancel`).catch(() => undefined);
    await server?.close(2000);
    await db?.cleanup();
  });

  it('shows each component, each SLO, the job statuses and the request charts, and refreshes by itself', async () => {
    session = await openBrowser({ baseUrl: server.url });
    const { page } = session;
    await page.goto('/');

    // Components: name, status, probe latency.
    const cards = page.locator('[data-component]');
    await expect.poll(() => cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-component')))).toEqual(['database', 'redis', 'background_tasks']);
    const statusOf = (name: string) => page.locator(`[data-component="${name}"] .card-title .badge`).textContent();
    expect(await statusOf('database')).toBe('healthy');
    expect(await statusOf('redis')).toBe('disabled');
    expect(await statusOf('background_tasks')).toBe('healthy');
    expect(await page.locator('[data-component="database"] .health-latency').textContent()).toMatch(/probe \d+(\.\d+)? ms/);
    expect(await page.locator('[data-component="redis"]').textContent()).toContain('REDIS_URL is not set');
    expect(await page.locator('[data-component="background_tasks"]').textContent()).toMatch(/runner modeinprocess/);
    await expect.poll(() => page.locator('.page-head > .badge').textContent()).toBe('healthy');

    // SLOs: every one of slo.yaml; availability has spent more than its budget on the 3 errors.
    const slos = page.locator('tr[data-slo]');
    await expect.poll(() => slos.evaluateAll((els) => els.map((e) => e.getAttribute('data-slo')))).toEqual(['api-availability', 'job-success', 'evaluation-run-success']);
    const availability = page.locator('tr[data-slo="api-availability"]');
    expect(await availability.textContent()).toContain('99.9%');
    await expect.poll(() => availability.locator('.budget-text').textContent()).toMatch(/^overspent \d+%$/);
    expect(await availability.locator('[role="meter"]').getAttribute('aria-valuenow')).toBe('0');

    // Job statuses of the last hour and day: what was created above.
    const bars = (since: string) =>
      page.locator(`.job-status-bars[data-since="${since}"] .count-bar`).evaluateAll((els) =>
        els.map((e) => [e.querySelector('.count-bar-label')?.textContent, e.querySelector('.count-bar-value')?.textContent]),
      );
    const expected = [['queued', '1'], ['running', '2'], ['succeeded', '5'], ['failed', '1'], ['cancelled', '1']];
    await expect.poll(() => bars('1h')).toEqual(expected);
    expect(await bars('24h')).toEqual(expected);
    expect(await page.locator('.job-status-bars[data-since="1h"] figcaption').textContent()).toBe('Jobs created in the last hour: 10');

    // The request charts: drawn on canvas, with the 3 errors in the totals.
    await expect.poll(() => page.locator('.request-totals').textContent()).toMatch(/, 3 answered 5xx \(/);
    expect(await page.locator('.chart[data-chart="Request rate"] canvas').count()).toBe(1);
    expect(await page.locator('.chart[data-chart="5xx ratio"] canvas').count()).toBe(1);
    // Pixels of the series colours: the request line (blue) and the 5xx ratio bars (red).
    const drawn = (title: string, rgb: [number, number, number]) =>
      page.locator(`.chart[data-chart="${title}"] canvas`).evaluate((canvas: any, [r, g, b]) => {
        const { width, height } = canvas;
        const data: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, width, height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - r) < 12 && Math.abs(data[i + 1]! - g) < 12 && Math.abs(data[i + 2]! - b) < 12 && data[i + 3]! > 200) n++;
        return n;
      }, rgb);
    await expect.poll(() => drawn('Request rate', [37, 99, 235])).toBeGreaterThan(20);
    await expect.poll(() => drawn('5xx ratio', [185, 28, 28])).toBeGreaterThan(20);

    // It reads everything again by itself: a job submitted now shows up without a reload.
    await submitJob(server, { type: 'noop' });
    await expect
      .poll(() => page.locator('.job-status-bars[data-since="1h"] figcaption').textContent(), { timeout: 20_000, interval: 500 })
      .toBe('Jobs created in the last hour: 11');

    await session.screenshot('overview');
    expect(session.problems).toEqual([]);
  });

  it('keeps the chart window in the URL', async () => {
    const { page } = session!;
    await page.selectOption('select[name="range"]', '6h');
    await expect.poll(() => new URL(page.url()).searchParams.get('range')).toBe('6h');
    await expect.poll(() => page.locator('.request-totals').textContent()).toMatch(/in buckets of 1 min/);
    await page.goto('/?range=24h');
    await expect.poll(() => page.locator('.request-totals').textContent()).toMatch(/in buckets of 4 min/);
    expect(await page.locator('select[name="range"]').inputValue()).toBe('24h');
    expect(session!.problems).toEqual([]);
  });
});
