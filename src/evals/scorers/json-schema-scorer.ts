import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { canonicalJson } from '../canonical-json.ts';
import { MAX_JSON_OUTPUT_CHARS, parseJsonOutput, type JsonOutputOptions } from './json-output.ts';
import { compileLinearRegex } from './linear-regex.ts';
import { binary, type Scorer } from './scorer.ts';

export interface JsonSchemaScorerOptions extends JsonOutputOptions {
  /** A JSON Schema (draft-07 by default; 2019-09 or 2020-12 when its `$schema` says so). */
  schema: Record<string, unknown>;
}

/**
 * A few common formats, checked by shape. ajv-formats is not a dependency of evalops; without these,
 * a schema using `format` would either fail to compile (strict) or silently ignore it. They run on the
 * linear-time engine too: the e-mail shape backtracks quadratically on V8 over a long run of dots.
 */
const FORMATS: Record<string, string> = {
  'date-time': String.raw`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`,
  date: String.raw`^\d{4}-\d{2}-\d{2}$`,
  time: String.raw`^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$`,
  email: String.raw`^[^\s@]+@[^\s@]+\.[^\s@]+$`,
  uri: String.raw`^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$`,
  uuid: String.raw`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`,
};

/** Compiles a JSON Schema with the draft it declares; throws with ajv's sentence when the schema is invalid. */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
  const options = { allErrors: true, strict: false, logger: false as const, code: { regExp: linearRegExp } };
  const ajv = declared.includes('2020-12')
    ? new Ajv2020(options)
    : declared.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options);
  for (const [name, pattern] of Object.entries(FORMATS)) {
    const format = compileLinearRegex(pattern);
    ajv.addFormat(name, (text: string) => format.test(text));
  }
  // ajv compares every pair of items when they may be objects or arrays (quadratic in the array's
  // length); comparing canonical forms in a map is linear.
  ajv.removeKeyword('uniqueItems');
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: uniqueItems });
  return ajv.compile(schema);
}

/** `pattern` and `patternProperties` of user schemas, on the linear-time engine (ajv passes `u` for unicodeRegExp). */
const linearRegExp: RegExpEngine = Object.assign((pattern: string, u: string) => compileLinearRegex(pattern, u), { code: 'compileLinearRegex' });

/** The canonical form of an item; JSON.parse turns 1e400 into Infinity, which has none: use its text. */
function uniquenessKey(item: unknown): string {
  try {
    return canonicalJson(item);
  } catch {
    return `~${String(item)}~${JSON.stringify(item)}`;
  }
}

function uniqueItems(this: unknown, unique: boolean, data: unknown[]): boolean {
  const self = uniqueItems as typeof uniqueItems & { errors?: Partial<ErrorObject>[] };
  self.errors = [];
  if (!unique) return true;
  const seen = new Map<string, number>();
  for (const [i, item] of data.entries()) {
    const key = uniquenessKey(item);
    const j = seen.get(key);
    if (j !== undefined) {
      self.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`, params: { i, j } }];
      return false;
    }
    seen.set(key, i);
  }
  return true;
}

/** `json_schema`: the output is JSON and validates against the configured schema. */
export function jsonSchemaScorer(name: string, options: JsonSchemaScorerOptions): Scorer {
  const validate = compileJsonSchema(options.schema);
  return {
    name,
    type: 'json_schema',
    async score({ output }) {
      if (output.length > MAX_JSON_OUTPUT_CHARS) return binary(false, `output of ${output.length} characters is over the ${MAX_JSON_OUTPUT_CHARS} a JSON scorer parses`);
      const parsed = parseJsonOutput(output, options);
      if (!parsed.ok) return binary(false, `output is not valid JSON: ${parsed.error}`);
      if (validate(parsed.value)) return binary(true, 'output matches the schema');
      const problems = (validate.errors ?? [])
        .slice(0, 3)
        .map((e) => `${e.instancePath === '' ? '(root)' : e.instancePath} ${e.message ?? 'is invalid'}`);
      const more = (validate.errors?.length ?? 0) > 3 ? ` and ${(validate.errors?.length ?? 0) - 3} more` : '';
      return binary(false, `output does not match the schema: ${problems.join('; ')}${more}`);
    },
  };
}
