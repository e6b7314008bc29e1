import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { request, uploadDataset } from '../helpers/eval-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The prompt and dataset pages in Chromium: a prompt's versions and the diff between two of them,
// snapshots with their row counts and a preview read from the server a page at a time.

let db: TestDatabase;
let server: TestServer;
let session: BrowserSession | undefined;
let snapshot: string;

/** A screenshot for looking at, not for the README: only the two kept in docs/ are written in docs mode. */
const extraShot = async (name: string) => (process.env.EVALOPS_SCREENSHOTS === 'docs' ? undefined : session!.screenshot(name));
/** Polls with a bound that a loaded machine stays well within (vitest's default is 1 s). */
const poll = <T>(fn: () => Promise<T> | T, timeout = 15_000) => expect.poll(fn, { timeout });

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  const url = server.url;
  const v1 = { name: 'support-reply', description: 'first draft', messages: [{ role: 'system', content: 'You answer support tickets.\nBe brief.' }, { role: 'user', content: 'Ticket: {{ticket}}' }], params: { temperature: 0 } };
  const v2 = { ...v1, description: 'polite and warmer', messages: [{ role: 'system', content: 'You answer support tickets.\nBe brief and polite.' }, { role: 'user', content: 'Ticket: {{ticket}}' }], params: { temperature: 0.3 } };
  for (const body of [v1, v2, { name: 'other', messages: [{ role: 'user', content: '{{x}}' }] }]) expect((await request(url, 'POST', '/v1/prompts', body)).status).toBe(201);
  const rows = Array.from({ length: 120 }, (_, k) => JSON.stringify({ id: `r${k + 1}`, vars: { ticket: `printer ${k + 1} jams`, lang: k % 2 ? 'en' : 'de' }, expected: `fix ${k + 1}` }));
  snapshot = (await uploadDataset(url, `${rows.join('\n')}\n`, 'application/x-ndjson', '?name=tickets')).body.data_snapshot_id;
  session = await openBrowser({ baseUrl: url });
});

afterAll(async () => {
  await session?.close();
  await server?.close(2000);
  await db?.cleanup();
});

describe('prompt pages', () => {
  it('lists prompts and diffs two versions by line and by word', async () => {
    const { page } = session!;
    await page.goto('/prompts');
    const row = page.locator('tr[data-prompt="support-reply"]');
    await poll(() => row.locator('td').allTextContents()).toEqual(['support-reply', 'support-reply@2', '2', expect.stringMatching(/^\d{4}-/)]);
    await row.locator('a').click();
    await poll(() => page.url()).toBe(`${server.url}/prompts/support-reply`);
    await poll(() => page.locator('.version-table tbody tr').count()).toBe(2);
    expect(await page.locator('.version-table tr[data-version="2"]').textContent()).toContain('polite and warmer');

    // By default the previous version against the latest, by line.
    await poll(() => page.locator('.diff-head h2').textContent()).toBe('support-reply@1 → support-reply@2');
    expect(await page.locator('.diff-del-line').allTextContents()).toEqual(['-Be brief.', '-  "temperature": 0']);
    expect(await page.locator('.diff-add-line').allTextContents()).toEqual(['+Be brief and polite.', '+  "temperature": 0.3']);
    await extraShot('prompt-diff-lines');

    await page.click('button:text("by word")');
    await poll(() => page.url()).toBe(`${server.url}/prompts/support-reply?from=1&to=2&mode=words`);
    await poll(async () => (await page.locator('.text-diff-words .diff-add').allTextContents()).map((t) => t.trim())).toEqual(['and polite', '.3']);
    expect(await page.locator('.text-diff-words .diff-del').count()).toBe(0);

    // The same version on both sides: no change marked.
    await page.selectOption('select[name="to"]', '1');
    await poll(() => page.locator('.diff-head h2').textContent()).toBe('support-reply@1 → support-reply@1');
    expect(await page.locator('.text-diff .diff-add, .text-diff .diff-del').count()).toBe(0);
    expect(await page.locator('.eval-page').textContent()).toContain('Only one version is chosen');
    expect(session!.problems).toEqual([]);
  });
});

describe('dataset pages', () => {
  it('lists snapshots with row counts and previews one a page at a time', async () => {
    const { page } = session!;
    await page.goto('/datasets');
    const row = page.locator(`tr[data-snapshot="${snapshot}"]`);
    await poll(() => row.locator('td').nth(3).textContent()).toBe('120');
    expect(await row.textContent()).toContain('tickets');
    await row.locator('a').click();
    await poll(() => page.locator('.preview-table tbody tr').count()).toBe(50);
    expect(await page.locator('dl.facts').textContent()).toContain(snapshot);
    // Stored canonically: vars in key order.
    expect(await page.locator('.preview-table thead th').allTextContents()).toEqual(['#', 'id', 'lang', 'ticket', 'expected']);
    expect(await page.locator('.preview-table tbody tr').first().locator('td').allTextContents()).toEqual(['1', 'r1', 'de', 'printer 1 jams', 'fix 1']);
    await extraShot('dataset-preview');
    await page.click('.pager button:text("Next")');
    await poll(() => page.locator('.preview-table tbody tr').first().getAttribute('data-row-id')).toBe('r51');
    expect(await page.locator('.pager-label').textContent()).toBe('Rows 51–100 of 120');
    await page.click('.pager button:text("Next")');
    await poll(() => page.locator('.preview-table tbody tr').count()).toBe(20);
    expect(await page.locator('.pager button:text("Next")').isDisabled()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download-link')]);
    expect(download.suggestedFilename()).toMatch(/^[0-9a-f]{12}\.jsonl$/);
    expect(session!.problems).toEqual([]);
  });
});
