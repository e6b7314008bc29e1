import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { DASHBOARD_ENV, extraScreenshot, failingHandler, submitJob, untilStatus } from '../helpers/dashboard-fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The jobs list (filters in the URL, paged on the server) and a job's page (payload, result, error,
// attempts, timeline; cancel and retry through the confirmation dialog) against a real server.
describe('dashboard jobs', () => {
  let db: TestDatabase;
  let server: TestServer;
  let session: BrowserSession;
  const noops: string[] = [];
  let failing = '';
  let long = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db, DASHBOARD_ENV, { handlers: [failingHandler] });
    // 30 noop jobs: more than one page of 25.
    for (let i = 0; i < 30; i++) noops.push(await submitJob(server, { type: 'noop', payload: { n: i } }));
    failing = await submitJob(server, { type: 'always_fails', payload: { reason: 'the model endpoint refused' }, max_attempts: 2 });
    long = await submitJob(server, { type: 'sleep', payload: { ms: 600_000 } });
    for (const id of noops) await untilStatus(server, id, ['succeeded']);
    await untilStatus(server, failing, ['failed']);
    await untilStatus(server, long, ['running']);
    session = await openBrowser({ baseUrl: server.url });
  });

  afterAll(async () => {
    await session?.close();
    await server?.api('POST', `/v1/jobs/${long}/cancel`).catch(() => undefined);
    await server?.close(2000);
    await db?.cleanup();
  });

  const rowIds = () => session.page.locator('tr[data-job-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-job-id')));
  const query = () => Object.fromEntries(new URL(session.page.url()).searchParams);

  it('pages through the list on the server, forward and back', async () => {
    const { page } = session;
    await page.goto('/jobs');
    const newest = [long, failing, ...[...noops].reverse()];
    await expect.poll(rowIds).toEqual(newest.slice(0, 25));
    expect(await page.locator('.pager-label').textContent()).toBe('Page 1 · 25 jobs · 25 per page');
    expect(await page.locator('.pager button:has-text("Previous")').isDisabled()).toBe(true);

    await page.click('.pager button:has-text("Next")');
    await expect.poll(rowIds).toEqual(newest.slice(25));
    expect(query().cursor).toBeTruthy();
    expect(await page.locator('.pager-label').textContent()).toBe('Page 2 · 7 jobs · 25 per page');
    expect(await page.locator('.pager button:has-text("Next")').isDisabled()).toBe(true);

    // To a job and back: the way to the previous page is remembered.
    await page.click(`tr[data-job-id="${newest[26]}"] a`);
    await expect.poll(() => page.url()).toBe(`${server.url}/jobs/${newest[26]}`);
    await page.goBack();
    await expect.poll(rowIds).toEqual(newest.slice(25));
    await page.click('.pager button:has-text("Previous")');
    await expect.poll(rowIds).toEqual(newest.slice(0, 25));
    expect(query().cursor).toBeUndefined();
    await extraScreenshot(session, 'jobs-list');
    expect(session.problems).toEqual([]);
  });

  it('filters by status, type and time, in the URL so a link reproduces the view', async () => {
    const { page } = session;
    await page.goto('/jobs');
    await expect.poll(rowIds).toHaveLength(25);

    await page.selectOption('select[name="status"]', 'failed');
    await expect.poll(rowIds).toEqual([failing]);
    expect(query()).toEqual({ status: 'failed' });
    expect(await page.locator(`tr[data-job-id="${failing}"] .error-cell`).textContent()).toBe('attempt 2 of 2: the model endpoint refused');
    expect(await page.locator(`tr[data-job-id="${failing}"]`).textContent()).toContain('2/2');

    await page.selectOption('select[name="status"]', 'running');
    await expect.poll(rowIds).toEqual([long]);
    await page.selectOption('select[name="status"]', '');
    await page.fill('input[name="type"]', 'sleep');
    await page.press('input[name="type"]', 'Enter');
    await expect.poll(rowIds).toEqual([long]);
    expect(query()).toEqual({ type: 'sleep' });

    await page.fill('input[name="type"]', 'noop');
    await page.press('input[name="type"]', 'Enter');
    await expect.poll(query).toEqual({ type: 'noop' });
    await page.selectOption('select[name="since"]', '1h');
    await expect.poll(query).toEqual({ type: 'noop', since: '1h' });
    await expect.poll(rowIds).toEqual([...noops].reverse().slice(0, 25));

    // The same URL opened afresh shows the same view, its filters filled in.
    await page.goto('/jobs?status=succeeded&type=noop&since=1h&limit=10');
    await expect.poll(rowIds).toEqual([...noops].reverse().slice(0, 10));
    expect(await page.locator('select[name="status"]').inputValue()).toBe('succeeded');
    expect(await page.locator('input[name="type"]').inputValue()).toBe('noop');
    expect(await page.locator('select[name="since"]').inputValue()).toBe('1h');
    await page.click('.pager button:has-text("Next")');
    await expect.poll(rowIds).toEqual([...noops].reverse().slice(10, 20));
    expect(query()).toMatchObject({ status: 'succeeded', type: 'noop', since: '1h', limit: '10' });

    // A type with no job: said in words.
    await page.goto('/jobs?type=nothing-of-this-type');
    await expect.poll(() => page.locator('.empty').textContent()).toBe('No job matches these filters.');
    expect(session.problems).toEqual([]);
  });

  it("shows a failed job's error, attempts and timeline", async () => {
    const { page } = session;
    await page.goto(`/jobs/${failing}`);
    await expect.poll(() => page.locator('.page-head .badge').textContent()).toBe('failed');
    expect(await page.locator('[data-block="error"] pre').textContent()).toBe('attempt 2 of 2: the model endpoint refused');
    expect(await page.locator('[data-block="payload"] pre').textContent()).toContain('"reason": "the model endpoint refused"');
    expect(await page.locator('[data-block="result"]').textContent()).toContain('none');
    expect(await page.locator('dl.facts').textContent()).toContain('attempts2 of 2');
    const timeline = await page.locator('.timeline .timeline-label').allTextContents();
    expect(timeline[0]).toBe('submitted');
    expect(timeline).toContain('attempt 2 of 2 started');
    expect(timeline.at(-1)).toMatch(/^failed after \d/);
    expect(await page.locator('.timeline li.timeline-bad .timeline-detail').textContent()).toBe('attempt 2 of 2: the model endpoint refused');
    expect(await page.locator('.actions button:has-text("Cancel")').isDisabled()).toBe(true);
    expect(await page.locator('.actions button:has-text("Retry")').isDisabled()).toBe(false);
    await session.screenshot('job');
    expect(session.problems).toEqual([]);
  });

  it('cancels a running job from its page, then retries it, each after confirmation', async () => {
    const { page } = session;
    await page.goto(`/jobs/${long}`);
    await expect.poll(() => page.locator('.page-head .badge').textContent()).toBe('running');
    expect(await page.locator('[data-block="payload"] pre').textContent()).toContain('"ms": 600000');

    // Cancel: the dialog asks; "No" changes nothing.
    await page.click('.actions button:has-text("Cancel")');
    const dialog = page.locator('[role="dialog"]');
    await expect.poll(() => dialog.textContent()).toContain(`Cancel job ${long.slice(0, 8)} (sleep)?`);
    await dialog.locator('button:has-text("No")').click();
    await expect.poll(() => dialog.count()).toBe(0);
    expect((await server.api('GET', `/v1/jobs/${long}`)).body.status).toBe('running');

    await page.click('.actions button:has-text("Cancel")');
    await dialog.locator('button:has-text("Yes, cancel")').click();
    await expect.poll(() => dialog.count()).toBe(0);
    await expect.poll(() => page.locator('.page-head .badge').textContent(), { timeout: 15_000 }).toBe('cancelled');
    const cancelled = (await server.api('GET', `/v1/jobs/${long}`)).body;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.cancel_requested_at).not.toBeNull();
    await expect.poll(() => page.locator('.timeline .timeline-label').allTextContents()).toContain('cancellation requested');
    await extraScreenshot(session, 'job-cancelled');

    // Retry: queued again with a fresh set of attempts, and the runner takes it at once.
    await page.click('.actions button:has-text("Retry")');
    await expect.poll(() => dialog.textContent()).toContain('again, with a fresh set of 3 attempts?');
    await dialog.locator('button:has-text("Yes, retry")').click();
    await expect.poll(() => dialog.count()).toBe(0);
    await expect.poll(() => page.locator('.page-head .badge').textContent(), { timeout: 15_000 }).toMatch(/^(queued|running)$/);
    const retried = await untilStatus(server, long, ['queued', 'running']);
    expect(retried.cancel_requested_at).toBeNull();
    expect(retried.finished_at).toBeNull();
    await untilStatus(server, long, ['running']);
    await expect.poll(() => page.locator('.page-head .badge').textContent(), { timeout: 15_000 }).toBe('running');
    await expect.poll(() => page.locator('.timeline .timeline-label').allTextContents()).toContain('attempt 1 of 3 started');
    expect(await page.locator('.actions button:has-text("Cancel")').isDisabled()).toBe(false);
    await extraScreenshot(session, 'job-retried');
    expect(session.problems).toEqual([]);
  });

  it('says so when a job does not exist', async () => {
    const { page } = session;
    const missing = '0b9c6c1e-0000-4000-8000-000000000000';
    await page.goto(`/jobs/${missing}`);
    await expect.poll(() => page.locator('.error-box').textContent()).toContain('404 NOT_FOUND');
    // The browser reports the 404 answer itself; nothing else may be reported.
    expect(session.problems.filter((p) => !p.includes(`/v1/jobs/${missing}`))).toEqual([]);
    session.problems.length = 0;
  });
});
