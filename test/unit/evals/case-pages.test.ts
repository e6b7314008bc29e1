import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CasePages } from '../../../src/evals/case-pages.ts';
import { buildResultsIndex, CASE_ERRORED, CASE_PASSED, classifyResultsLine } from '../../../src/evals/results-index.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'evalops-case-pages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A results line in the runner's key order (evaluation-runner.ts). */
function resultsLine(c: { id: string; vars: Record<string, unknown>; expected: unknown; output: string | null; pass: boolean; scores: Record<string, unknown>; error: string | null }): string {
  return JSON.stringify({ id: c.id, vars: c.vars, expected: c.expected, output: c.output, pass: c.pass, scores: c.scores, latency_ms: 3, tokens: null, error: c.error });
}

/** Strings that look like the keys the index looks for. */
const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom(',"pass":true,"scores":{', '"pass":false', ',"error":null}', '"}', '\\"pass\\":true', 'scores', '\n', 'é ✓ 中'),
);
const json = fc.jsonValue({ maxDepth: 2 });

describe('classifyResultsLine', () => {
  it('agrees with JSON.parse on any case the runner can write, however its values look', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: tricky,
          vars: fc.dictionary(fc.oneof(tricky, fc.constantFrom('pass', 'scores', 'error')), fc.oneof(json, tricky, fc.constant({ pass: true, scores: {} }))),
          expected: fc.oneof(json, tricky),
          output: fc.option(tricky),
          scores: fc.dictionary(fc.oneof(tricky, fc.constantFrom('scores', 'pass')), fc.record({ score: fc.option(fc.double({ min: 0, max: 1, noNaN: true })), pass: fc.boolean(), reason: tricky })),
          error: fc.option(tricky),
        }),
        (c) => {
          const pass = c.error === null && Object.values(c.scores).every((s) => s.pass);
          const line = Buffer.from(resultsLine({ ...c, pass }));
          const expected = (c.error !== null ? CASE_ERRORED : 0) | (pass ? CASE_PASSED : 0);
          expect(classifyResultsLine(line)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('falls back to parsing a line in another key order', () => {
    expect(classifyResultsLine(Buffer.from(JSON.stringify({ pass: true, error: null, id: 'x' })))).toBe(CASE_PASSED);
    expect(classifyResultsLine(Buffer.from(JSON.stringify({ error: 'boom', pass: false })))).toBe(CASE_ERRORED);
  });
});

describe('the results index and case pages', () => {
  const write = (name: string, lines: string[]) => {
    const file = path.join(dir, name);
    writeFileSync(`${file}.tmp`, lines.join('\n') + '\n');
    renameSync(`${file}.tmp`, file);
    return file;
  };
  const line = (i: number, outcome: 'pass' | 'fail' | 'error', text = `case ${i}`) =>
    resultsLine({ id: `c${i}`, vars: { text }, expected: text, output: outcome === 'error' ? null : text, pass: outcome === 'pass', scores: outcome === 'error' ? {} : { exact: { score: outcome === 'pass' ? 1 : 0, pass: outcome === 'pass', reason: 'r' } }, error: outcome === 'error' ? 'boom' : null });

  it('indexes byte offsets across chunk boundaries (multi-byte text, long lines)', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => line(i, i % 3 === 0 ? 'pass' : i % 3 === 1 ? 'fail' : 'error', `é${'x'.repeat(i % 7 === 0 ? 5000 : 10)} ✓ ${i}`));
    const file = write('offsets.jsonl', lines);
    const index = await buildResultsIndex(file);
    expect(index.count).toBe(3000);
    let offset = 0;
    lines.forEach((l, i) => {
      expect(index.offsets[i]).toBe(offset);
      offset += Buffer.byteLength(l) + 1;
    });
    expect(index.offsets[3000]).toBe(offset);
    expect([index.flags[0], index.flags[1], index.flags[2]]).toEqual([CASE_PASSED, 0, CASE_ERRORED]);
    const pages = new CasePages();
    const page = await pages.page('run-a', file, { offset: 2990, limit: 50 });
    expect(page.cases.map((c) => c.id)).toEqual(Array.from({ length: 10 }, (_, k) => `c${2990 + k}`));
  });

  it('rebuilds the index when the file is replaced and keeps the cases it covers within its bound', async () => {
    const pages = new CasePages({ maxCases: 250, maxRuns: 8 });
    const a = write('a.jsonl', Array.from({ length: 100 }, (_, i) => line(i, 'pass')));
    expect((await pages.page('a', a, { offset: 0, limit: 1, status: ['fail'] })).matched).toBe(0);
    write('a.jsonl', Array.from({ length: 120 }, (_, i) => line(i, i < 20 ? 'fail' : 'pass')));
    expect((await pages.page('a', a, { offset: 0, limit: 1, status: ['fail'] })).matched).toBe(20);
    const b = write('b.jsonl', Array.from({ length: 100 }, (_, i) => line(i, 'pass')));
    await pages.page('b', b, { offset: 0, limit: 1 });
    expect(pages.cached).toEqual({ runs: 2, cases: 220 });
    const c = write('c.jsonl', Array.from({ length: 100 }, (_, i) => line(i, 'error')));
    await pages.page('c', c, { offset: 0, limit: 1 });
    // a (least recently used) goes: 320 cases were over the bound of 250.
    expect(pages.cached).toEqual({ runs: 2, cases: 200 });
    const big = write('big.jsonl', Array.from({ length: 400 }, (_, i) => line(i, 'pass')));
    expect((await pages.page('big', big, { offset: 399, limit: 5 })).cases.map((x) => x.id)).toEqual(['c399']);
    expect(pages.cached).toEqual({ runs: 1, cases: 400 });
  });

  it('shares one build between concurrent first requests', async () => {
    const pages = new CasePages();
    const file = write('shared.jsonl', Array.from({ length: 500 }, (_, i) => line(i, 'pass')));
    const answers = await Promise.all(Array.from({ length: 5 }, (_, k) => pages.page('shared', file, { offset: k * 100, limit: 1 })));
    expect(answers.map((p) => p.cases[0]!.id)).toEqual(['c0', 'c100', 'c200', 'c300', 'c400']);
    expect(pages.cached).toEqual({ runs: 1, cases: 500 });
  });
});
