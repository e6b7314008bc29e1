import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import { compileJsonSchema } from '../../../src/evals/scorers/json-schema-scorer.ts';
import { createScorers, parseScorerList } from '../../../src/evals/scorers/scorer-factory.ts';
import type { Scorer } from '../../../src/evals/scorers/scorer.ts';

/**
 * User-given patterns run on a linear-time engine, and no scorer holds the event loop on long or
 * adversarial outputs. The bounds here are generous (seconds where the engine needs milliseconds):
 * the figures are measured by bench/scorer-worst-case.ts, not asserted.
 */

const one = (config: Record<string, unknown>): Scorer => createScorers(parseScorerList([{ name: 's', ...config }]))[0]!;

function refusal(config: Record<string, unknown>): AppError {
  try {
    parseScorerList([{ name: 's', ...config }]);
  } catch (error) {
    return error as AppError;
  }
  throw new Error('the scorer list was accepted');
}

describe('regex scorer on the linear-time engine', () => {
  it('matches ^(a+)+$ against a long run of a then ! without backtracking', async () => {
    const scorer = one({ type: 'regex', pattern: '^(a+)+$' });
    const started = performance.now();
    const result = await scorer.score({ output: `${'a'.repeat(28)}!`, vars: {} });
    const elapsed = performance.now() - started;
    expect(result.pass).toBe(false);
    // Backtracking took seconds at 28 characters (25 s at 29); the linear engine takes well under 1 ms.
    expect(elapsed).toBeLessThan(1000);
    expect((await scorer.score({ output: 'a'.repeat(100_000), vars: {} })).pass).toBe(true);
  });

  it('keeps the flags users rely on: i, m, s (u is accepted; RE2 always matches code points)', async () => {
    expect((await one({ type: 'regex', pattern: '^ANSWER: \\d+$', flags: 'im' }).score({ output: 'reasoning\nanswer: 42\n', vars: {} })).pass).toBe(true);
    expect((await one({ type: 'regex', pattern: 'a.b', flags: 's' }).score({ output: 'a\nb', vars: {} })).pass).toBe(true);
    expect((await one({ type: 'regex', pattern: 'a.b' }).score({ output: 'a\nb', vars: {} })).pass).toBe(false);
    expect((await one({ type: 'regex', pattern: '^.$', flags: 'u' }).score({ output: '😀', vars: {} })).pass).toBe(true);
    expect((await one({ type: 'regex', pattern: 'b+' }).score({ output: 'abbbc', vars: {} })).reason).toBe('output matches /b+/ at "bbb"');
  });

  it('refuses with UNPROCESSABLE (422) a pattern using lookaround or backreferences, naming the feature', () => {
    for (const [pattern, feature] of [
      ['(a)\\1', 'backreferences'],
      ['foo(?=bar)', 'lookahead'],
      ['(?<!x)y', 'lookbehind'],
      ['(?<q>a)\\k<q>', 'backreferences'],
    ] as const) {
      const error = refusal({ type: 'regex', pattern });
      expect(error.code, pattern).toBe('UNPROCESSABLE');
      expect(error.status).toBe(422);
      expect(error.message).toContain('s.0.pattern'.replace('s.0', 'scorers.0'));
      expect(error.message).toContain(feature);
    }
  });

  it('still answers 400 VALIDATION for a pattern that is not a regex at all', () => {
    const error = refusal({ type: 'regex', pattern: '(unclosed' });
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toMatch(/scorers\.0\.pattern: invalid regular expression/);
  });

  it('refuses a pattern whose program is too large to match in bounded time', () => {
    const error = refusal({ type: 'regex', pattern: '[a-z]{1000}'.repeat(3) });
    expect(error.code).toBe('UNPROCESSABLE');
    expect(error.message).toMatch(/instructions, over the limit of/);
  });
});

describe('json_schema scorer', () => {
  it('runs the schema pattern keyword on the linear-time engine', async () => {
    const scorer = one({ type: 'json_schema', schema: { type: 'string', pattern: '^(a+)+$' } });
    const started = performance.now();
    const result = await scorer.score({ output: JSON.stringify(`${'a'.repeat(28)}!`), vars: {} });
    expect(result.pass).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses a schema pattern using lookahead with UNPROCESSABLE, naming the field', () => {
    const error = refusal({ type: 'json_schema', schema: { type: 'string', pattern: 'a(?=b)' } });
    expect(error.code).toBe('UNPROCESSABLE');
    expect(error.message).toContain('scorers.0.schema');
    expect(error.message).toContain('lookahead');
  });

  it('checks uniqueItems of objects in linear time, and still finds the duplicates', async () => {
    const validate = compileJsonSchema({ type: 'array', uniqueItems: true });
    const items = Array.from({ length: 50_000 }, (_, i) => ({ i, tags: [String(i)] }));
    const started = performance.now();
    expect(validate(items)).toBe(true);
    // ajv's pairwise comparison needs 1.25e9 comparisons here (minutes); keyed by canonical form, milliseconds.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(validate([{ a: 1, b: [2] }, { b: [2], a: 1 }])).toBe(false);
    expect(validate.errors?.[0]?.message).toMatch(/duplicate items \(items ## 0 and 1 are identical\)/);
  });

  it('checks the email format on the linear-time engine', async () => {
    const scorer = one({ type: 'json_schema', schema: { type: 'string', format: 'email' } });
    const started = performance.now();
    const result = await scorer.score({ output: JSON.stringify(`a@${'.'.repeat(50_000)} `), vars: {} });
    expect(result.pass).toBe(false);
    expect(performance.now() - started).toBeLessThan(5000);
    expect((await scorer.score({ output: '"x@example.org"', vars: {} })).pass).toBe(true);
  });
});

describe('similarity scorer', () => {
  it('refuses texts over its length bound with a reason instead of a quadratic comparison', async () => {
    const scorer = one({ type: 'similarity', value: 'b'.repeat(30_000) });
    const started = performance.now();
    const result = await scorer.score({ output: 'a'.repeat(30_000), vars: {} });
    expect(result.pass).toBe(false);
    expect(result.reason).toMatch(/over the 10000 the similarity scorer compares/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('lets the event loop turn during a long comparison', async () => {
    const scorer = one({ type: 'similarity', value: 'ab'.repeat(4_000) });
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 0);
    const result = await scorer.score({ output: 'ba'.repeat(4_000), vars: {} });
    clearInterval(timer);
    expect(result.score).toBeGreaterThan(0.9);
    expect(ticks).toBeGreaterThan(0);
  });
});
