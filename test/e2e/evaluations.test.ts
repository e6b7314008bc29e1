import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser, SCREENSHOT_DIR } from '../helpers/browser.ts';
import { request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The evaluation pages in Chromium against a real server: a 20,000-case run paged through on the
// server (forward, far jumps, the last page, a filter, a search), the list refreshing while a run is
// running, cancel and rerun, and the three files downloaded with and without an API key.

const CASES = 20_000;
/** Case i fails `exact` when i % 7 == 0 (its expected answer differs from what echo answers). */
const failing = (i: number) => i % 7 === 0;
const FAILING = Math.floor(CASES / 7);

let db: TestDatabase;
let server: TestServer;
let session: BrowserSession | undefined;
let big: any;
let url: string;

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await request(url, 'POST', '/v1/evaluations', body);
  expect(res.status, res.text).toBe(202);
  return res.body.run_id;
}

async function dataset(rows: number, prefix: string, name: string): Promise<string> {
  let text = '';
  for (let i = 1; i <= rows; i += 1) text += `${JSON.stringify({ id: `c${i}`, vars: { text: `${prefix} ${i}` }, expected: failing(i) ? `echo: other ${i}` : `echo: ${prefix} ${i}` })}\n`;
  const res = await uploadDataset(url, text, 'application/x-ndjson', `?name=${name}`);
  expect([200, 201], res.text).toContain(res.status);
  return res.body.data_snapshot_id;
}

/** A screenshot for looking at, not for the README: only the two kept in docs/ are written in docs mode. */
const extraShot = async (name: string) => (process.env.EVALOPS_SCREENSHOTS === 'docs' ? undefined : session!.screenshot(name));
/** Polls with a bound that a loaded machine stays well within (vitest's default is 1 s). */
const poll = <T>(fn: () => Promise<T> | T, timeout = 15_000) => expect.poll(fn, { timeout });

/** The case ids shown in the case table, top to bottom. */
const caseIds = (page: Page) => page.locator('.case-table tr.case-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-case-id')));
const ids = (from: number, to: number, step = 1) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, k) => `c${from + k * step}`);

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567' });
  url = server.url;
  // echo answers with the user message: `echo: {{text}}` makes every case pass except the i % 7 == 0 ones.
  await request(url, 'POST', '/v1/prompts', { name: 'e2e-echo', messages: [{ role: 'system', content: 'Repeat the text.' }, { role: 'user', content: 'echo: {{text}}' }], params: { temperature: 0 } });
  const snapshot = await dataset(CASES, 'case', 'twenty-thousand');
  const runId = await submit({ name: 'twenty thousand cases', prompt_version: 'e2e-echo@1', data_snapshot_id: snapshot, provider: 'echo', model: 'echo-1', concurrency: 128, scorers: [{ name: 'exact', type: 'exact' }], thresholds: { exact: 0.9 } });
  big = await waitForRun(url, runId, 100_000);
  expect(big.status, big.error_message).toBe('succeeded');
  expect(big.summary).toMatchObject({ cases: CASES, passed: CASES - FAILING });
  session = await openBrowser({ baseUrl: url });
});

afterAll(async () => {
  await session?.close();
  await server?.close(2000);
  await db?.cleanup();
});

describe('evaluation pages', () => {
  it('lists runs with status, progress, key scores, prompt, dataset and model, refreshing while one runs', async () => {
    const { page } = session!;
    // About 20 s of work (echo answers 12 cases at a time, each after 1 s): the page sees it running.
    const slowSnapshot = await dataset(240, 'slow', 'slow');
    const slow = await submit({ name: 'slow', prompt_version: 'e2e-echo@1', data_snapshot_id: slowSnapshot, provider: { type: 'echo', delay_ms: 1000 }, concurrency: 1 });
    await waitForRun(url, slow, 30_000, ['running']);
    await page.goto('/evaluations');
    const bigRow = page.locator(`tr[data-run-id="${big.run_id}"]`);
    await poll(() => bigRow.locator('.badge').first().textContent()).toBe('succeeded');
    expect(await bigRow.locator('.key-scores').textContent()).toBe(`exact ${(((CASES - FAILING) / CASES) * 100).toFixed(1)}% pass · mean ${((CASES - FAILING) / CASES).toFixed(3)}`);
    expect(await bigRow.textContent()).toContain('e2e-echo@1');
    expect(await bigRow.textContent()).toContain('echo-1');
    expect(await bigRow.textContent()).toContain('threshold failed');
    expect(await bigRow.locator('.run-progress-label').textContent()).toBe('20,000 / 20,000');
    expect(await bigRow.locator('a[href^="/datasets/"]').getAttribute('href')).toBe(`/datasets/${encodeURIComponent(big.data_snapshot_id)}`);

    // The running run's progress moves on screen without a reload.
    const slowRow = page.locator(`tr[data-run-id="${slow}"]`);
    await poll(() => slowRow.locator('.badge').first().textContent()).toBe('running');
    const done = async () => Number(/^([\d,]+) \//.exec((await slowRow.locator('.run-progress-label').textContent()) ?? '')?.[1]?.replace(/,/g, '') ?? -1);
    await poll(done).toBeGreaterThanOrEqual(0);
    const first = await done();
    await poll(done).toBeGreaterThan(first);
    expect(await page.locator('.live-note').count()).toBe(1);
    await extraShot('evaluations-list');

    // Cancel it from its page (a confirmation first).
    await slowRow.locator('a[href^="/evaluations/"]').click();
    await poll(() => page.url()).toBe(`${url}/evaluations/${slow}`);
    await page.click('button:text("Cancel run")');
    await page.click('.dialog button:text("Yes, cancel run")');
    await expect.poll(() => page.locator('.eval-head .badge').textContent(), { timeout: 20_000 }).toBe('cancelled');
    await poll(() => page.locator('.file-table').textContent()).toContain('results.jsonl.partial');
    expect(await page.locator('.eval-page').textContent()).toContain('the cases done before it was cancelled are in results.jsonl.partial');
    expect(session!.problems).toEqual([]);
  });

  it('opens the 20,000-case run and pages through it on the server: forward, far, last, filtered, searched', async () => {
    const { page } = session!;
    await page.goto(`/evaluations/${big.run_id}`);
    await poll(() => caseIds(page)).toEqual(ids(1, 50));
    expect(await page.locator('.case-count').textContent()).toBe('Cases 1–50 of 20,000');
    // Facts, summary per scorer, run_metadata, files.
    expect(await page.locator('h1').textContent()).toContain('twenty thousand cases');
    expect(await page.locator('.eval-head').textContent()).toContain('a threshold failed');
    expect(await page.locator('tr[data-scorer="exact"]').textContent()).toContain('85.7%');
    const metadata = JSON.parse((await page.locator('.metadata-json').textContent())!);
    expect(metadata).toMatchObject({ commit_sha: '0123456789abcdef0123456789abcdef01234567', prompt_version: 'e2e-echo@1', data_snapshot_id: big.data_snapshot_id, mode: 'live' });
    expect(await page.locator('a.download-link').allTextContents()).toEqual(['results.jsonl', 'run_metadata.json', 'summary.json']);

    const pager = page.locator('.case-paging');
    for (let n = 1; n <= 3; n += 1) {
      await pager.locator('button:text("Next")').click();
      await poll(() => caseIds(page)).toEqual(ids(n * 50 + 1, n * 50 + 50));
    }
    expect(await page.locator('.case-count').textContent()).toBe('Cases 151–200 of 20,000');
    expect(page.url()).toBe(`${url}/evaluations/${big.run_id}?offset=150`);
    await pager.locator('button:text("Previous")').click();
    await poll(() => caseIds(page)).toEqual(ids(101, 150));

    // Far: page 399 of 400, then the last one.
    await pager.locator('input[name="page"]').fill('399');
    await pager.locator('button:text("Go")').click();
    await poll(() => caseIds(page)).toEqual(ids(19_901, 19_950));
    expect(await pager.locator('.pager-label').textContent()).toBe('Page 399 of 400');
    await pager.locator('button:text("Next")').click();
    await poll(() => caseIds(page)).toEqual(ids(19_951, 20_000));
    expect(await pager.locator('button:text("Next")').isDisabled()).toBe(true);
    // The browser's back button returns to the page before.
    await page.goBack();
    await poll(() => caseIds(page)).toEqual(ids(19_901, 19_950));

    // Failing cases only, then a far page of them.
    await page.selectOption('select[name="status"]', 'fail');
    await poll(() => caseIds(page)).toEqual(ids(7, 350, 7));
    expect(await page.locator('.case-count').textContent()).toBe(`Cases 1–50 of ${FAILING.toLocaleString('en-US')} matching (20,000 in the run)`);
    expect(await page.locator('.case-table tr.case-row .badge').allTextContents()).toEqual(Array(50).fill('fail'));
    await pager.locator('input[name="page"]').fill('57');
    await pager.locator('button:text("Go")').click();
    await poll(() => caseIds(page)).toEqual(ids(7 * 2801, 7 * 2850, 7));
    expect(await pager.locator('.pager-label').textContent()).toBe('Page 57 of 58');

    // Search (within the failing cases, then in all of them).
    await page.fill('input[name="q"]', 'case 1999');
    await page.press('input[name="q"]', 'Enter');
    await poll(() => caseIds(page)).toEqual(['c19992', 'c19999']);
    await page.selectOption('select[name="status"]', '');
    await poll(() => caseIds(page)).toEqual(['c1999', ...ids(19_990, 19_999)]);
    expect(await page.locator('.case-count').textContent()).toBe('Cases 1–11 of 11 matching (20,000 in the run)');

    // A case opens to show everything about it.
    await page.locator('tr[data-case-id="c19992"] button:text("Details")').click();
    const detail = page.locator('.case-detail');
    await poll(() => detail.textContent()).toContain('Input vars');
    const text = (await detail.textContent())!;
    expect(text).toContain('"text": "case 19992"');
    expect(text).toContain('echo: other 19992');
    expect(text).toContain('echo: case 19992');
    expect(text).toContain('exact');
    // The README's picture of a run page: the top of the page down to the opened case.
    await page.setViewportSize({ width: 1400, height: 1400 });
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'evaluation-run.png') });
    await page.setViewportSize({ width: 1400, height: 900 });

    await page.click('button:text("Clear")');
    await poll(() => caseIds(page)).toEqual(ids(1, 50));
    expect(session!.problems).toEqual([]);
  });

  it('downloads the three files (a plain link with no key needed)', async () => {
    const { page } = session!;
    await page.goto(`/evaluations/${big.run_id}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download-link:text("summary.json")')]);
    expect(download.suggestedFilename()).toBe('summary.json');
    expect(JSON.parse(readFileSync((await download.path())!, 'utf8'))).toMatchObject({ cases: CASES, passed: CASES - FAILING });
    expect(session!.problems).toEqual([]);
  });

  it('reruns a run in replay mode from its page and follows the new run', async () => {
    const { page } = session!;
    const small = await waitForRun(url, await submit({ prompt_version: 'e2e-echo@1', data_snapshot_id: await dataset(12, 'small', 'small'), provider: 'echo' }));
    await page.goto(`/evaluations/${small.run_id}`);
    await poll(() => caseIds(page)).toEqual(ids(1, 12));
    await page.click('.eval-head button:text("Rerun")');
    await page.click('.dialog button:text("Yes, rerun")');
    await poll(() => page.url()).not.toBe(`${url}/evaluations/${small.run_id}`);
    const rerun = page.url().split('/').at(-1)!;
    expect(rerun).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => page.locator('.eval-head .badge').textContent(), { timeout: 30_000 }).toBe('succeeded');
    expect(await page.locator('dl.facts').textContent()).toContain(`rerun of${small.run_id.slice(0, 8)}`);
    expect(await page.locator('dl.facts').textContent()).toContain('replay');
    await poll(() => caseIds(page)).toEqual(ids(1, 12));
    await extraShot('evaluation-rerun');
    expect(session!.problems).toEqual([]);
  });

  it('uses the API key entered in the page for every request and for downloads', async () => {
    const created = await request(url, 'POST', '/v1/admin/api-keys', { name: 'e2e-reader', scopes: ['read'] });
    expect(created.status, created.text).toBe(201);
    await expect.poll(async () => (await request(url, 'GET', '/v1/evaluations')).status, { timeout: 10_000 }).toBe(401);
    const keyed = await openBrowser({ baseUrl: url, apiKey: created.body.key });
    try {
      const { page } = keyed;
      await page.goto(`/evaluations/${big.run_id}?status=fail&offset=2850`);
      await poll(() => caseIds(page)).toEqual(ids(7 * 2851, 7 * FAILING, 7));
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download-link:text("results.jsonl")')]);
      expect(download.suggestedFilename()).toBe('results.jsonl');
      // Buffer.equals: a deep equality over 5 MB byte by byte takes a minute.
      expect(readFileSync((await download.path())!).equals(readFileSync(path.join(big.run_dir, 'results.jsonl')))).toBe(true);
      expect(keyed.problems).toEqual([]);
    } finally {
      await keyed.close();
    }
  });
});
