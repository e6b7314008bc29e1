import { describe, expect, it } from 'vitest';
import { EvalValidationError } from '../../../src/evals/eval-errors.ts';
import type { CompletionRequest, Provider } from '../../../src/evals/providers/provider.ts';
import { parseJudgeReply } from '../../../src/evals/scorers/llm-judge-scorer.ts';
import { parseNumberFromText } from '../../../src/evals/scorers/numeric-scorer.ts';
import { createScorers, parseScorerList } from '../../../src/evals/scorers/scorer-factory.ts';
import type { ScoreInput, Scorer } from '../../../src/evals/scorers/scorer.ts';
import { levenshtein, levenshteinSimilarity } from '../../../src/evals/scorers/similarity-scorer.ts';

function one(config: Record<string, unknown>, deps: Parameters<typeof createScorers>[1] = {}): Scorer {
  const [scorer] = createScorers(parseScorerList([{ name: 's', ...config }]), deps);
  return scorer as Scorer;
}

const input = (output: string, expected?: unknown, vars: Record<string, unknown> = {}): ScoreInput => ({ output, expected, vars });

describe('exact', () => {
  it('trims by default and compares exactly otherwise', async () => {
    const scorer = one({ type: 'exact' });
    expect(await scorer.score(input('Paris\n', 'Paris'))).toEqual({ score: 1, pass: true, reason: 'output equals "Paris"' });
    expect(await scorer.score(input('paris', 'Paris'))).toEqual({ score: 0, pass: false, reason: 'output "paris" differs from expected "Paris"' });
  });

  it('applies case and whitespace options, and a fixed value', async () => {
    const scorer = one({ type: 'exact', case_insensitive: true, collapse_whitespace: true });
    expect((await scorer.score(input('  New   YORK ', 'new york'))).pass).toBe(true);
    expect((await one({ type: 'exact', value: 'ok' }).score(input('ok'))).pass).toBe(true);
    expect((await one({ type: 'exact', trim: false }).score(input('a ', 'a'))).pass).toBe(false);
  });

  it('compares non-string expected values as canonical JSON', async () => {
    expect((await one({ type: 'exact' }).score(input('{"a":1,"b":2}', { b: 2, a: 1 }))).pass).toBe(true);
  });

  it('fails with a reason when the case has no expected value', async () => {
    expect(await one({ type: 'exact' }).score(input('x'))).toEqual({ score: 0, pass: false, reason: 's: the case has no expected value to compare with' });
  });
});

describe('contains', () => {
  it('looks for the expected text', async () => {
    const scorer = one({ type: 'contains', case_insensitive: true });
    expect(await scorer.score(input('The capital is PARIS.', 'paris'))).toEqual({ score: 1, pass: true, reason: 'output contains "paris"' });
    expect((await scorer.score(input('Lyon', 'paris'))).reason).toBe('output does not contain "paris"');
  });
});

describe('regex', () => {
  it('matches with flags', async () => {
    const scorer = one({ type: 'regex', pattern: '^answer: \\d+$', flags: 'im' });
    expect(await scorer.score(input('Reasoning...\nANSWER: 42'))).toEqual({ score: 1, pass: true, reason: 'output matches /^answer: \\d+$/im at "ANSWER: 42"' });
    expect((await scorer.score(input('no'))).pass).toBe(false);
  });

  it('rejects an invalid pattern or stateful flags at config time', () => {
    expect(() => parseScorerList([{ name: 'r', type: 'regex', pattern: '(unclosed' }])).toThrow(/scorers\.0\.pattern: invalid regular expression: /);
    expect(() => parseScorerList([{ name: 'r', type: 'regex', pattern: 'a', flags: 'g' }])).toThrow(/flags 'g' may only contain i, m, s and u/);
  });
});

describe('json_valid and json_schema', () => {
  it('json_valid accepts JSON and, when allowed, a fenced block', async () => {
    expect((await one({ type: 'json_valid' }).score(input('{"a": [1, 2]}'))).pass).toBe(true);
    const fenced = '```json\n{"a": 1}\n```';
    expect((await one({ type: 'json_valid' }).score(input(fenced))).pass).toBe(false);
    expect((await one({ type: 'json_valid', allow_code_fence: true }).score(input(fenced))).pass).toBe(true);
    expect((await one({ type: 'json_valid' }).score(input('{a:1}'))).reason).toMatch(/^output is not valid JSON: /);
  });

  it('json_schema validates with ajv and names the failing paths', async () => {
    const schema = {
      type: 'object',
      required: ['name', 'age'],
      properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, when: { type: 'string', format: 'date' } },
    };
    const scorer = one({ type: 'json_schema', schema });
    expect(await scorer.score(input('{"name":"Ada","age":36,"when":"2024-01-31"}'))).toEqual({ score: 1, pass: true, reason: 'output matches the schema' });
    const bad = await scorer.score(input('{"age":-1,"when":"yesterday"}'));
    expect(bad.pass).toBe(false);
    expect(bad.reason).toContain("(root) must have required property 'name'");
    expect(bad.reason).toContain('/age must be >= 0');
    expect(bad.reason).toContain('/when must match format "date"');
  });

  it('supports draft 2020-12 schemas', async () => {
    const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'number' }], items: false };
    const scorer = one({ type: 'json_schema', schema });
    expect((await scorer.score(input('[1]'))).pass).toBe(true);
    expect((await scorer.score(input('[1, 2]'))).pass).toBe(false);
  });

  it('rejects an invalid schema at config time', () => {
    expect(() => parseScorerList([{ name: 'j', type: 'json_schema', schema: { type: 'no-such-type' } }])).toThrow(/scorers\.0\.schema: invalid JSON Schema: /);
  });
});

describe('numeric', () => {
  it('parses numbers out of text', () => {
    expect(parseNumberFromText('The answer is 1,234.5 units')).toBe(1234.5);
    expect(parseNumberFromText('x = -3e2')).toBe(-300);
    expect(parseNumberFromText('between 3 and 4', 'last')).toBe(4);
    expect(parseNumberFromText('none')).toBeNull();
  });

  it('passes within absolute or relative tolerance', async () => {
    const abs = one({ type: 'numeric', absolute: 0.5 });
    expect(await abs.score(input('about 41.6', 42))).toEqual({ score: 1, pass: true, reason: '41.6 is within 0.5 of 42' });
    expect(await abs.score(input('41.4', '42'))).toEqual({ score: 0, pass: false, reason: '41.4 differs from 42 by 0.6, more than the 0.5 allowed' });
    const rel = one({ type: 'numeric', relative: 0.01 });
    expect((await rel.score(input('1009', 1000))).pass).toBe(true);
    expect((await rel.score(input('1011', 1000))).pass).toBe(false);
  });

  it('explains a missing number', async () => {
    expect((await one({ type: 'numeric' }).score(input('no idea', 3))).reason).toBe('no number found in output "no idea"');
    expect((await one({ type: 'numeric' }).score(input('3', 'three'))).reason).toBe('the expected value "three" is not a number');
  });
});

describe('similarity', () => {
  it('computes Levenshtein distance over code points', () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(levenshtein('flaw', 'lawn')).toBe(2);
    expect(levenshtein('a😀b', 'a😁b')).toBe(1);
    expect(levenshteinSimilarity('', '')).toBe(1);
    expect(levenshteinSimilarity('kitten', 'sitting')).toBeCloseTo(1 - 3 / 7, 12);
  });

  it('passes at the threshold', async () => {
    const scorer = one({ type: 'similarity', threshold: 0.5 });
    const result = await scorer.score(input('kitten', 'sitting'));
    expect(result.score).toBeCloseTo(4 / 7, 12);
    expect(result.pass).toBe(true);
    expect(result.reason).toBe('edit-distance similarity 0.5714 >= 0.5');
    expect((await one({ type: 'similarity' }).score(input('kitten', 'sitting'))).pass).toBe(false);
  });
});

describe('threshold on binary scorers', () => {
  it('overrides pass with score >= threshold', async () => {
    const scorer = one({ type: 'exact', threshold: 1 });
    expect((await scorer.score(input('a', 'a'))).reason).toBe('output equals "a" (score 1 >= threshold 1)');
  });
});

describe('llm_judge', () => {
  function judge(reply: string): { provider: Provider; seen: CompletionRequest[] } {
    const seen: CompletionRequest[] = [];
    return {
      seen,
      provider: {
        type: 'fake',
        describe: () => ({ type: 'fake', base_url: null }),
        complete: async (request) => {
          seen.push(request);
          return { output: reply, tokens: null, latencyMs: 1 };
        },
      },
    };
  }

  it('sends the rubric with output, expected and vars through the named provider', async () => {
    const { provider, seen } = judge('{"score": 0.8, "reason": "mostly right"}');
    const scorer = one(
      { type: 'llm_judge', provider: 'judge', model: 'judge-model', rubric: 'Q: {{vars.question}}\nA: {{output}}\nExpected: {{expected}}' },
      { resolveProvider: (name) => (name === 'judge' ? provider : undefined) },
    );
    const result = await scorer.score(input('4', '4', { question: '2+2?' }));
    expect(result).toEqual({ score: 0.8, pass: true, reason: 'judge score 0.8 >= 0.5: mostly right' });
    expect(seen[0]?.model).toBe('judge-model');
    expect(seen[0]?.params).toEqual({ temperature: 0 });
    expect(seen[0]?.seed).toBe(0);
    expect(seen[0]?.messages[1]).toEqual({ role: 'user', content: 'Q: 2+2?\nA: 4\nExpected: 4' });
  });

  it('applies its threshold and fails with a reason on an unparseable reply', async () => {
    const low = one({ type: 'llm_judge', provider: 'j', model: 'm', threshold: 0.9 }, { resolveProvider: () => judge('Score: 4/5').provider });
    expect(await low.score(input('x', 'y'))).toEqual({ score: 0.8, pass: false, reason: 'judge score 0.8 < 0.9' });
    const vague = one({ type: 'llm_judge', provider: 'j', model: 'm' }, { resolveProvider: () => judge('I think it is fine').provider });
    expect(await vague.score(input('x'))).toEqual({ score: 0, pass: false, reason: 'the judge\'s reply held no score or verdict: "I think it is fine"' });
  });

  it('parses the usual reply shapes', () => {
    expect(parseJudgeReply('```json\n{"score": 3, "max": 5}\n```')).toEqual({ score: 0.6, reason: null });
    expect(parseJudgeReply('{"verdict": "PASS", "reason": "ok"}')).toEqual({ score: 1, reason: 'ok' });
    expect(parseJudgeReply('score = 0.25')).toEqual({ score: 0.25, reason: null });
    expect(parseJudgeReply('Verdict: FAIL')).toEqual({ score: 0, reason: null });
    expect(parseJudgeReply('score: 7')).toBeNull();
    expect(parseJudgeReply('PASS or FAIL?')).toBeNull();
  });

  it('refuses a provider name nobody knows, and builds inline providers', async () => {
    expect(() => one({ type: 'llm_judge', provider: 'ghost', model: 'm' })).toThrow("scorers.0.provider: no provider named 'ghost'");
    const inline = one({ type: 'llm_judge', provider: { type: 'echo' }, model: 'm', rubric: 'PASS {{output}}' });
    expect((await inline.score(input('x'))).score).toBe(1);
  });
});

describe('scorer list', () => {
  it('requires unique names and names every invalid field', () => {
    let caught: unknown;
    try {
      parseScorerList([
        { name: 'a', type: 'exact' },
        { name: 'a', type: 'contains' },
        { name: 'bad name', type: 'similarity', threshold: 2 },
        { name: 'x', type: 'unknown' },
      ]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EvalValidationError);
    const problems = (caught as EvalValidationError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^scorers\.2\.name: must be 1-64 characters/),
        expect.stringMatching(/^scorers\.2\.threshold: Too big/),
        expect.stringMatching(/^scorers\.3\.type: /),
      ]),
    );
    expect(() => parseScorerList([{ name: 'a', type: 'exact' }, { name: 'a', type: 'contains' }])).toThrow(
      "scorers.1.name: 'a' is already the name of scorer 0",
    );
    expect(() => parseScorerList([])).toThrow(/scorers: at least one scorer is needed/);
  });
});
