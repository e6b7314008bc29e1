import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowser, SCREENSHOT_DIR } from '../helpers/browser.ts';
import { request, uploadDataset, waitForRun } from '../helpers/eval-helpers.ts';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

// The compare page in Chromium: two runs of the same dataset against an OpenAI-compatible endpoint
// whose answers differ by model on some cases, picked in the page; the per-scorer deltas, the
// verdict, and the flipped cases with both outputs side by side.

const CASES = 60;
/** Model "base" answers case i wrongly when i % 10 == 0, model "head" when i % 7 == 0. */
const wrong = (model: string, i: number) => (model === 'base' ? i % 10 === 0 : model === 'head' ? i % 7 === 0 : false);
const range = (n: number) => Array.from({ length: n }, (_, k) => k + 1);
const REGRESSIONS = range(CASES).filter((i) => wrong('head', i) && !wrong('base', i));
const FIXES = range(CASES).filter((i) => wrong('base', i) && !wrong('head', i));

let db: TestDatabase;
let server: TestServer;
let openai: FakeOpenAIServer;
let session: BrowserSession | undefined;
let base: string;
let head: string;

/** A screenshot for looking at, not for the README: only the two kept in docs/ are written in docs mode. */
const extraShot = async (name: string) => (process.env.EVALOPS_SCREENSHOTS === 'docs' ? undefined : session!.screenshot(name));
/** Polls with a bound that a loaded machine stays well within (vitest's default is 1 s). */
const poll = <T>(fn: () => Promise<T> | T, timeout = 15_000) => expect.poll(fn, { timeout });

beforeAll(async () => {
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({
    reply: ({ model, messages }) => {
      const i = Number(/question (\d+)/.exec(messages.at(-1)!.content)?.[1]);
      return wrong(model, i) ? `I think the answer to question ${i} is unknown` : undefined;
    },
  });
  server = await startTestServer(db);
  const url = server.url;
  await request(url, 'POST', '/v1/prompts', { name: 'qa', messages: [{ role: 'user', content: '{{q}}' }] });
  const rows = range(CASES).map((i) => JSON.stringify({ id: `q${i}`, vars: { q: `question ${i}` }, expected: `echo: question ${i}` }));
  const snapshot = (await uploadDataset(url, `${rows.join('\n')}\n`)).body.data_snapshot_id;
  const run = async (model: string) => {
    const res = await request(url, 'POST', '/v1/evaluations', { name: `model ${model}`, prompt_version: 'qa@1', data_snapshot_id: snapshot, provider: { type: 'openai', base_url: openai.url }, model, concurrency: 8, scorers: [{ name: 'exact', type: 'exact' }] });
    expect(res.status, res.text).toBe(202);
    const done = await waitForRun(url, res.body.run_id, 60_000);
    expect(done.status, done.error_message).toBe('succeeded');
    return done.run_id as string;
  };
  base = await run('base');
  head = await run('head');
  session = await openBrowser({ baseUrl: url });
});

afterAll(async () => {
  await session?.close();
  await server?.close(2000);
  await openai?.close();
  await db?.cleanup();
});

describe('compare page', () => {
  it('compares two runs picked in the page: deltas, verdict, flipped cases first with both outputs', async () => {
    const { page } = session!;
    await page.goto('/compare');
    await poll(() => page.locator('select[name="base"] option').count()).toBe(3);
    await page.selectOption('select[name="base"]', base);
    await page.selectOption('select[name="head"]', head);
    await page.click('button:text("Compare")');
    await poll(() => page.url()).toBe(`${server.url}/compare?base=${base}&head=${head}`);

    const row = page.locator('.compare-table tr[data-scorer="exact"]');
    await poll(() => row.count()).toBe(1);
    const cells = await row.locator('td').allTextContents();
    const baseMean = 1 - 6 / CASES;
    const headMean = 1 - 8 / CASES;
    expect(cells.slice(0, 5)).toEqual(['exact', '60', baseMean.toFixed(3), headMean.toFixed(3), `−${(baseMean - headMean).toFixed(3)}`]);
    expect(cells.slice(6, 10)).toEqual(['90.0%', '86.7%', String(REGRESSIONS.length), String(FIXES.length)]);
    expect(cells[10]).toMatch(/^p = 0\.\d{3}$/);
    const verdict = (await page.locator('.verdict[data-scorer="exact"]').textContent())!;
    expect(verdict).toContain('No clear difference');
    expect(verdict).toContain(`${REGRESSIONS.length} case(s) went from pass to fail and ${FIXES.length} from fail to pass`);

    // Regressions first, then fixes, each in dataset order.
    const flipped = await page.locator('.flipped-list > li').evaluateAll((items) => items.map((li) => li.getAttribute('data-case-id')));
    expect(flipped).toEqual([...REGRESSIONS, ...FIXES].map((i) => `q${i}`));
    const first = page.locator(`.flipped[data-case-id="q${REGRESSIONS[0]}"]`);
    expect(await first.locator('.side-base pre').textContent()).toBe(`echo: question ${REGRESSIONS[0]}`);
    expect(await first.locator('.side-head .text-diff').textContent()).toContain(`I think the answer to question ${REGRESSIONS[0]} is unknown`);
    expect(await first.locator('.side-head .diff-add').count()).toBeGreaterThan(0);
    expect(await first.locator('.flipped-inputs').textContent()).toContain(`"q": "question ${REGRESSIONS[0]}"`);
    const fix = page.locator(`.flipped[data-case-id="q${FIXES[0]}"]`);
    expect(await fix.locator('.side-base pre').textContent()).toBe(`I think the answer to question ${FIXES[0]} is unknown`);
    expect(await fix.locator('.badge').allTextContents()).toEqual(['fail', 'pass']);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'compare-runs.png'), fullPage: false });
    await extraShot('compare-full');

    // A flipped case links to itself in the head run.
    await first.locator('a:text("in head")').click();
    await poll(() => page.locator('.case-table tr.case-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-case-id')))).toEqual([`q${REGRESSIONS[0]}`]);
    expect(session!.problems).toEqual([]);
  });

  it('opens the comparison of two runs ticked in the evaluations list', async () => {
    const { page } = session!;
    await page.goto('/evaluations');
    await page.check(`tr[data-run-id="${head}"] input[type="checkbox"]`);
    await page.check(`tr[data-run-id="${base}"] input[type="checkbox"]`);
    await page.click('a:text("Compare the 2 ticked runs")');
    // The older run is the base, whatever order they were ticked in.
    await poll(() => page.url()).toBe(`${server.url}/compare?base=${base}&head=${head}`);
    await poll(() => page.locator('.flipped-list > li').count()).toBe(REGRESSIONS.length + FIXES.length);
    // Swapped: the same flips, the other way round.
    await page.click('button:text("Swap")');
    await page.click('button:text("Compare")');
    await poll(() => page.url()).toBe(`${server.url}/compare?base=${head}&head=${base}`);
    await poll(() => page.locator('.flipped-list > li').first().getAttribute('data-case-id')).toBe(`q${FIXES[0]}`);
    expect(await page.locator('.compare-table tr[data-scorer="exact"] td').nth(4).textContent()).toMatch(/^\+0\.033$/);
    expect(session!.problems).toEqual([]);
  });
});
