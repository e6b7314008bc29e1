import fc from 'fast-check';

/**
 * Generators of the `scorers` field of an evaluation spec, shared by the unit and HTTP properties:
 * every scorer type of src/evals/scorers/scorer-factory.ts with plausible and hostile values (regex
 * patterns built from the constructs that break engines, JSON Schemas with pattern,
 * patternProperties, format and uniqueItems, out-of-range thresholds, judge fields), plus unknown
 * fields, wrong types, huge and deep values, NUL and lone surrogates.
 */

export const HOSTILE_STRINGS = ['', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udc00', '💥', '__proto__', 'constructor', 'toString', '{{output}}', '{{env.PATH}}', '{{vars.text}}', '{{', '}}', '$&', '\\', '"', 'é', 'x'.repeat(5000)];

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
);

export const hostileNumber = fc.oneof(
  fc.constantFrom(0, 1, -1, 0.5, 1.5, 2 ** 53 - 1, 2 ** 53 + 2, Number.MAX_VALUE, Number.MIN_VALUE, 1e21, -1e-7),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));

export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileLeaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).value;

/** Pieces of regular expressions: RE2 syntax, JavaScript-only syntax, invalid syntax, catastrophic shapes. */
const REGEX_PIECES = [
  'a', 'b', '.', '.*', '.+?', '\\d+', '\\w', '\\s*', '\\b', '[a-z]', '[^"]', '[\\]]', '^', '$', '|', '(', ')', '(?:', '(?P<n>', '(?<n>', '+', '*', '?', '{2}', '{1,3}',
  '{2,1}', '{1000}', '(a+)+', '(a|aa)*', '(.*a){12}', '\\p{L}', '\\pN', '\\x{41}', '\\x41', '\\u00e9', '\\u{1F4A5}', '\\cA', '\\1', '\\k<n>', '(?=x)', '(?!x)', '(?<=x)',
  '(?<!x)', '(?i)', '(?s:.)', '\\Q.*\\E', '\\z', '\\A', '[[:alpha:]]', '[\\d-z]', '\\', '[', ']', '}', '💥', 'é', '\u0000', '\ud800',
];

export const regexPattern = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...REGEX_PIECES), { minLength: 1, maxLength: 8 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('^(a+)+$', '(\\w+\\s?)*$', '^(([a-z])+.)+[A-Z]([a-z])+$', 'x'.repeat(3000), '(a{1,100}){1,100}', '[\\s\\S]{1,60000}', '^answer: \\d+$') },
);
export const regexFlags = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(undefined, '', 'i', 'ims', 'u') }, { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'gimsuyvdx!'), maxLength: 5 }) });

const FORMATS = ['date-time', 'date', 'time', 'email', 'uri', 'uuid', 'ipv4', 'regex', 'no-such-format', ''];

/** JSON Schemas: real keywords (pattern, patternProperties, format, uniqueItems, $ref, combinators) with hostile values, nested up to `depth`. */
function schemaOf(depth: number): fc.Arbitrary<Record<string, unknown>> {
  const inner: fc.Arbitrary<Record<string, unknown>> = depth <= 0 ? fc.constantFrom<Record<string, unknown>>({}, { type: 'string' }, { type: 'integer' }) : fc.oneof(fc.constant({}), schemaOf(depth - 1));
  return fc
    .record(
      {
        $schema: fc.constantFrom('http://json-schema.org/draft-07/schema#', 'https://json-schema.org/draft/2020-12/schema', 'https://json-schema.org/draft/2019-09/schema', 'http://example.invalid/x'),
        type: fc.oneof(fc.constantFrom('object', 'array', 'string', 'number', 'integer', 'boolean', 'null', 'nonsense'), fc.constant(['string', 'number'])),
        pattern: regexPattern,
        patternProperties: fc.dictionary(regexPattern, inner, { maxKeys: 2, noNullPrototype: true }),
        format: fc.constantFrom(...FORMATS),
        uniqueItems: fc.oneof(fc.boolean(), hostileLeaf),
        items: fc.oneof(inner, fc.boolean()),
        properties: fc.dictionary(fc.oneof(fc.constantFrom('a', 'answer', '__proto__', 'constructor'), hostileString), inner, { maxKeys: 3, noNullPrototype: true }),
        required: fc.oneof(fc.array(fc.constantFrom('a', 'answer', 'constructor'), { maxLength: 3 }), hostileLeaf),
        additionalProperties: fc.oneof(fc.boolean(), inner),
        enum: fc.array(hostileLeaf, { maxLength: 3 }),
        const: hostileLeaf,
        minLength: hostileNumber,
        maxItems: hostileNumber,
        multipleOf: fc.constantFrom(0, 1e-300, 0.1, -1, 7),
        anyOf: fc.array(inner, { maxLength: 2 }),
        not: inner,
        $ref: fc.constantFrom('#', '#/definitions/x', '#/$defs/x', 'http://127.0.0.1:1/schema.json', 'other.json', '#/properties/a'),
        definitions: fc.record({ x: inner }),
      },
      { requiredKeys: [] },
    )
    // Few keywords at a time: a schema with all of them rarely validates anything.
    .chain((s) => fc.subarray(Object.keys(s), { maxLength: 4 }).map((keys) => Object.fromEntries(keys.map((k) => [k, s[k as keyof typeof s]]))));
}
export const jsonSchema = schemaOf(2);

/** Mostly valid names (with repeats, so duplicates occur), sometimes not. */
export const scorerName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('s1', 's2', 's3', 'exact', 'judge', 'a.b-c_d') }, { weight: 1, arbitrary: hostileString });
const threshold = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(undefined, 0, 0.5, 0.9, 1) }, { weight: 1, arbitrary: fc.oneof(hostileNumber, fc.constant(-0)) });
const optionalBool = fc.constantFrom(undefined, true, false);

/** An inline judge provider: the run's, an echo, or an OpenAI-compatible endpoint (`judgeUrl`, which a test serves). */
export function judgeProvider(judgeUrl: string, keyVar: string): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom('run', 'echo', 'openai', 'no-such-provider', ''),
    fc.constant({ type: 'echo' }),
    fc.record({ type: fc.constant('openai'), base_url: fc.constantFrom(judgeUrl), api_key_env: fc.constantFrom(keyVar, undefined), backoff_base_ms: fc.constant(20), max_attempts: fc.constant(1) }, { requiredKeys: ['type', 'base_url'] }),
    fc.record({ type: fc.constantFrom('openai', 'http', 'nope'), base_url: hostileString, url: hostileString }, { requiredKeys: ['type'] }),
  );
}

/** One scorer config of every type, with plausible and hostile values in its fields. */
export function scorerConfig(judgeUrl = 'http://127.0.0.1:9/v1', keyVar = 'SCORER_FUZZ_API_KEY'): fc.Arbitrary<Record<string, unknown>> {
  const base = { name: scorerName, threshold };
  const text = fc.oneof(hostileString, fc.constantFrom('echo: case 1', 'case', 'ECHO'));
  const configs = [
    fc.record({ ...base, type: fc.constant('exact'), value: fc.option(text, { nil: undefined }), trim: optionalBool, case_insensitive: optionalBool, collapse_whitespace: optionalBool }, { requiredKeys: ['name', 'type'] }),
    fc.record({ ...base, type: fc.constant('contains'), value: fc.option(text, { nil: undefined }), case_insensitive: optionalBool }, { requiredKeys: ['name', 'type'] }),
    fc.record({ ...base, type: fc.constant('regex'), pattern: regexPattern, flags: regexFlags }, { requiredKeys: ['name', 'type', 'pattern'] }),
    fc.record({ ...base, type: fc.constant('json_valid'), allow_code_fence: optionalBool }, { requiredKeys: ['name', 'type'] }),
    fc.record({ ...base, type: fc.constant('json_schema'), schema: jsonSchema, allow_code_fence: optionalBool }, { requiredKeys: ['name', 'type', 'schema'] }),
    fc.record({ ...base, type: fc.constant('numeric'), value: fc.option(hostileNumber, { nil: undefined }), absolute: fc.option(hostileNumber, { nil: undefined }), relative: fc.option(hostileNumber, { nil: undefined }), pick: fc.constantFrom(undefined, 'first', 'last', 'middle') }, { requiredKeys: ['name', 'type'] }),
    fc.record({ ...base, type: fc.constant('similarity'), value: fc.option(text, { nil: undefined }), trim: optionalBool, case_insensitive: optionalBool, collapse_whitespace: optionalBool }, { requiredKeys: ['name', 'type'] }),
    fc.record(
      {
        ...base,
        type: fc.constant('llm_judge'),
        provider: judgeProvider(judgeUrl, keyVar),
        model: fc.oneof(fc.constantFrom('judge', 'gpt-x'), hostileString),
        rubric: fc.oneof(fc.constantFrom('Grade {{output}} against {{expected}}.', 'Is {{vars.text}} echoed in {{output}}? score: 1', 'missing {{vars.nope}} {{other}}'), hostileString),
        system: fc.oneof(fc.constant('Answer {"score": 1}.'), hostileString),
        params: fc.oneof(fc.constant({ temperature: 0 }), fc.dictionary(hostileString, hostileJson, { maxKeys: 3, noNullPrototype: true })),
        seed: fc.oneof(fc.integer(), hostileNumber),
      },
      { requiredKeys: ['name', 'type', 'provider', 'model'] },
    ),
  ];
  return fc.oneof(...configs).map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)));
}

/** A scorer config with one field replaced, added or removed, at the top or inside. */
export function mutatedScorer(judgeUrl?: string, keyVar?: string): fc.Arbitrary<unknown> {
  const valid = scorerConfig(judgeUrl, keyVar);
  return fc.oneof(
    fc.tuple(valid, fc.constantFrom('name', 'type', 'threshold', 'value', 'pattern', 'flags', 'schema', 'provider', 'model', 'rubric', 'params', 'seed', 'absolute', 'pick'), hostileJson).map(([c, k, v]) => ({ ...c, [k]: v })),
    fc.tuple(valid, hostileString, hostileJson).map(([c, k, v]) => ({ ...c, [k]: v })),
    fc.tuple(valid, fc.constantFrom('name', 'type', 'pattern', 'schema', 'provider', 'model')).map(([c, k]) => Object.fromEntries(Object.entries(c).filter(([key]) => key !== k))),
    fc.tuple(valid, fc.constantFrom('type', 'name', 'pattern', 'schema'), fc.nat({ max: 80 })).map(([c, k, d]) => ({ ...c, [k]: JSON.parse('['.repeat(d) + ']'.repeat(d) || 'null') as unknown })),
    fc.tuple(valid, fc.nat({ max: 2 })).map(([c, n]) => ({ ...c, value: ['x'.repeat(70_000), '\u0000'.repeat(10), '\ud83d'.repeat(3)][n] })),
    hostileJson,
  );
}

/** A `scorers` value: mostly lists of configs (some mutated), sometimes not a list at all. */
export function scorerList(judgeUrl?: string, keyVar?: string): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(scorerConfig(judgeUrl, keyVar), { minLength: 1, maxLength: 3 }) },
    { weight: 3, arbitrary: fc.array(fc.oneof(scorerConfig(judgeUrl, keyVar), mutatedScorer(judgeUrl, keyVar)), { minLength: 0, maxLength: 3 }) },
    { weight: 1, arbitrary: hostileJson },
  );
}

/**
 * `scorers` as raw JSON text, for what JSON.stringify cannot write: -0, 1e400, integers beyond 2^53,
 * duplicate keys, `__proto__` keys, escapes of NUL and lone surrogates, deep nesting.
 */
export const rawScorersText = fc.oneof(
  fc.constantFrom(
    '[{"name":"s","type":"similarity","threshold":-0}]',
    '[{"name":"s","type":"similarity","threshold":1e400}]',
    '[{"name":"s","type":"numeric","value":1e400,"absolute":-1e400}]',
    '[{"name":"s","type":"numeric","value":-0,"relative":123456789012345678901234567890}]',
    '[{"name":"s","type":"llm_judge","provider":"run","model":"m","seed":9007199254740993}]',
    '[{"name":"s","type":"exact","type":"regex","pattern":"a"}]',
    '[{"name":"s","type":"regex","pattern":"a","pattern":"(?=a)"}]',
    '[{"name":"s","type":"exact","__proto__":{"type":"regex"}}]',
    '[{"name":"s","type":"json_schema","schema":{"__proto__":{"type":"string"}}}]',
    '[{"name":"s","type":"json_schema","schema":{"properties":{"__proto__":{"type":"string"}}}}]',
    '[{"name":"s","type":"json_schema","schema":{"constructor":{"prototype":{"x":1}}}}]',
    '[{"name":"s","type":"contains","value":"\\u0000"}]',
    '[{"name":"s","type":"regex","pattern":"\\ud800"}]',
    '[{"name":"\\udc00","type":"exact"}]',
    '[{"name":"s","type":"json_schema","schema":{"enum":[1e400,-0]}}]',
    '[{"name":"s","type":"json_schema","schema":{"maxLength":1e400,"multipleOf":5e-324}}]',
    '{"0":{"name":"s","type":"exact"}}',
    '[]',
    'null',
    '"exact"',
  ),
  fc.nat({ max: 3000 }).map((d) => `[{"name":"s","type":"json_schema","schema":${'{"not":'.repeat(d)}{}${'}'.repeat(d)}}]`),
  fc.nat({ max: 3000 }).map((d) => `[{"name":"s","type":"llm_judge","provider":"run","model":"m","params":{"p":${'['.repeat(d)}${']'.repeat(d)}}}]`),
);

/** Outputs to score: short texts, JSON, hostile strings and long texts up to 64 KiB. */
export const scorerOutput = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(hostileString, fc.constantFrom('echo: case 1', '{"answer": 42}', '```json\n{"a": [1, 1]}\n```', '[1, 1, {"a": 1}, {"a": 1}]', 'score: 0.7', 'PASS', '{"score": 2}', 'The answer is 1,234.5.', '2026-12-08T01:02:03Z')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', 'ab', '1,', '[1,', '{"a":', ' ', 'é', '💥', '\\"'), fc.integer({ min: 1, max: 32_768 })).map(([unit, n]) => unit.repeat(n).slice(0, 65_536)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 8_000 }).map((n) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ a: i % 7 })))) },
);

/** Patterns the linear-time engine accepts, among them the shapes that backtrack catastrophically elsewhere. */
const VALID_PATTERNS = ['^(a+)+$', '(\\w+\\s?)*$', '^(([a-z])+.)+[A-Z]([a-z])+$', '(a|aa)*b', '(.*a){12}', 'echo: \\w+', '\\d+(?:\\.\\d+)?', '(?i)ECHO', '[\\s\\S]{1,500}x', '^\\{.*\\}$', '\\p{L}+', 'x{1,100}'];

/**
 * Scorer configs of every type that the service must accept (names are given by the caller): the
 * values are adversarial (patterns that backtrack on other engines, schemas with pattern,
 * patternProperties, format and uniqueItems, thresholds at their bounds) but valid.
 */
export function validScorerConfig(judgeUrl: string, keyVar: string): fc.Arbitrary<Record<string, unknown>> {
  const threshold = fc.constantFrom(undefined, 0, 0.25, 1);
  const pattern = fc.constantFrom(...VALID_PATTERNS);
  const schema = fc.constantFrom<Record<string, unknown>>(
    { type: 'array', uniqueItems: true, items: { type: 'object', properties: { a: { type: 'integer' } } } },
    { type: 'object', patternProperties: { '^(a+)+$': { type: 'string', pattern: '(\\w+\\s?)*$' } }, additionalProperties: true },
    { type: 'object', properties: { a: { type: 'string', format: 'email' }, b: { type: 'string', format: 'date-time' } }, required: ['a'] },
    { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', items: { type: 'object' }, uniqueItems: true, maxItems: 1000 },
    { type: 'string', pattern: '^(([a-z])+.)+[A-Z]([a-z])+$', format: 'uri' },
    { anyOf: [{ type: 'number', multipleOf: 0.5 }, { type: 'object', additionalProperties: { type: 'string' } }] },
  );
  const value = fc.constantFrom('echo: case 1', 'answer', 'é💥', 'x'.repeat(2000));
  return fc.oneof(
    fc.record({ type: fc.constant('exact'), threshold, value, case_insensitive: fc.boolean(), collapse_whitespace: fc.boolean() }),
    fc.record({ type: fc.constant('contains'), threshold, value, case_insensitive: fc.boolean() }),
    fc.record({ type: fc.constant('regex'), threshold, pattern, flags: fc.constantFrom('', 'i', 'ms', 'u') }),
    fc.record({ type: fc.constant('json_valid'), threshold, allow_code_fence: fc.boolean() }),
    fc.record({ type: fc.constant('json_schema'), threshold, schema, allow_code_fence: fc.boolean() }),
    fc.record({ type: fc.constant('numeric'), threshold, absolute: fc.constantFrom(0, 0.5, 1e6), relative: fc.constantFrom(0, 0.01), pick: fc.constantFrom('first', 'last') }),
    fc.record({ type: fc.constant('similarity'), threshold: fc.constantFrom(0, 0.5, 0.8, 1), value: fc.constantFrom(undefined, 'echo: case 1', 'x'.repeat(2000)) }),
    fc.record({
      type: fc.constant('llm_judge'),
      threshold,
      provider: fc.constantFrom<unknown>('run', { type: 'openai', base_url: judgeUrl, api_key_env: keyVar, backoff_base_ms: 20, max_attempts: 2 }),
      model: fc.constant('judge'),
      rubric: fc.constantFrom(undefined, 'Grade {{output}} against {{expected}} for {{vars.text}}.'),
      seed: fc.constantFrom(undefined, 0, 7),
    }),
  ).map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)));
}
