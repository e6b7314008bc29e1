/** Parsing of model outputs that should be JSON, shared by the `json_valid` and `json_schema` scorers. */

export interface JsonOutputOptions {
  /** Accept JSON wrapped in a Markdown code fence (```json ... ```), as chat models often answer. @defaultValue false */
  allow_code_fence?: boolean;
}

/**
 * Longest output the JSON scorers parse: JSON.parse and schema validation cannot yield to the event
 * loop; 256 KiB parses in about 2 ms (bench/scorer-worst-case.ts). Longer outputs fail the scorer,
 * saying so.
 */
export const MAX_JSON_OUTPUT_CHARS = 262_144;

const FENCE = /^```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```$/;

/** Parses the output as JSON; returns the value or the parser's sentence. */
export function parseJsonOutput(
  output: string,
  options: JsonOutputOptions,
): { ok: true; value: unknown } | { ok: false; error: string } {
  let text = output.trim();
  if (options.allow_code_fence) {
    const fenced = FENCE.exec(text);
    if (fenced !== null) text = (fenced[1] as string).trim();
  }
  if (text === '') return { ok: false, error: 'the output is empty' };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
