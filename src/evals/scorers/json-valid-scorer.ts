import { MAX_JSON_OUTPUT_CHARS, parseJsonOutput, type JsonOutputOptions } from './json-output.ts';
import { binary, type Scorer } from './scorer.ts';

export type JsonValidScorerOptions = JsonOutputOptions;

/** `json_valid`: the output parses as JSON. */
export function jsonValidScorer(name: string, options: JsonValidScorerOptions = {}): Scorer {
  return {
    name,
    type: 'json_valid',
    async score({ output }) {
      if (output.length > MAX_JSON_OUTPUT_CHARS) return binary(false, `output of ${output.length} characters is over the ${MAX_JSON_OUTPUT_CHARS} a JSON scorer parses`);
      const parsed = parseJsonOutput(output, options);
      return parsed.ok ? binary(true, 'output is valid JSON') : binary(false, `output is not valid JSON: ${parsed.error}`);
    },
  };
}
