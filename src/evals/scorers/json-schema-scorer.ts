import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseJsonOutput, type JsonOutputOptions } from './json-output.ts';
import { binary, type Scorer } from './scorer.ts';

export interface JsonSchemaScorerOptions extends JsonOutputOptions {
  /** A JSON Schema (draft-07 by default; 2019-09 or 2020-12 when its `$schema` says so). */
  schema: Record<string, unknown>;
}

/**
 * A few common formats, checked by shape. ajv-formats is not a dependency of evalops; without these,
 * a schema using `format` would either fail to compile (strict) or silently ignore it.
 */
const FORMATS: Record<string, RegExp> = {
  'date-time': /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  time: /^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/,
  email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  uri: /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};

/** Compiles a JSON Schema with the draft it declares; throws with ajv's sentence when the schema is invalid. */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
  const options = { allErrors: true, strict: false, logger: false as const };
  const ajv = declared.includes('2020-12')
    ? new Ajv2020(options)
    : declared.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options);
  for (const [name, pattern] of Object.entries(FORMATS)) ajv.addFormat(name, pattern);
  return ajv.compile(schema);
}

/** `json_schema`: the output is JSON and validates against the configured schema. */
export function jsonSchemaScorer(name: string, options: JsonSchemaScorerOptions): Scorer {
  const validate = compileJsonSchema(options.schema);
  return {
    name,
    type: 'json_schema',
    async score({ output }) {
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
