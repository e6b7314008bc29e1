import { extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { canonicalJson } from './canonical-json.ts';
import { EvalError, EvalValidationError, formatZodIssues } from './eval-errors.ts';

export type ChatRole = 'system' | 'user' | 'assistant';

/** One chat message; `content` may hold `{{var}}` placeholders before rendering. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * `{{name}}`, `{{ name }}`, `{{a.b}}`, `{{items.0}}`. The first segment must start like an
 * identifier so that text such as `{{ }}` or `{{1}}` in a prompt stays literal instead of
 * becoming a variable nobody can supply.
 */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

/** A template referenced variables the case does not supply. Not retryable: the input is wrong. */
export class TemplateError extends EvalError {
  readonly missing: readonly string[];

  constructor(missing: readonly string[]) {
    const list = missing.map((m) => `'${m}'`).join(', ');
    super('VALIDATION', `prompt template is missing ${missing.length === 1 ? 'variable' : 'variables'} ${list}`, {
      problems: missing.map((m) => `missing variable: ${m}`),
    });
    this.missing = missing;
  }
}

/** Looks up a dotted path: nested first (`a.b` -> vars.a.b), then a literal key `"a.b"` (CSV columns). */
export function lookupVariable(vars: unknown, path: string): { found: boolean; value: unknown } {
  let current: unknown = vars;
  let found = true;
  for (const segment of path.split('.')) {
    if (current !== null && typeof current === 'object' && Object.hasOwn(current, segment)) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      found = false;
      break;
    }
  }
  if (found && current !== undefined) return { found: true, value: current };
  if (vars !== null && typeof vars === 'object' && Object.hasOwn(vars, path)) {
    const value = (vars as Record<string, unknown>)[path];
    if (value !== undefined) return { found: true, value };
  }
  return { found: false, value: undefined };
}

/** Text form of a variable value: strings as they are, everything else as canonical JSON. */
export function formatVariable(value: unknown): string {
  return typeof value === 'string' ? value : canonicalJson(value);
}

/** Names of the variables used in `text`, in order of first appearance, without duplicates. */
export function textVariables(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(PLACEHOLDER)) names.add(match[1] as string);
  return [...names];
}

/** Names of the variables used across all messages, in order of first appearance. */
export function templateVariables(messages: readonly ChatMessage[]): string[] {
  const names = new Set<string>();
  for (const message of messages) for (const name of textVariables(message.content)) names.add(name);
  return [...names];
}

/** Substitutes `{{var}}` placeholders in one string; throws `TemplateError` naming every missing variable. */
export function renderTemplate(text: string, vars: Record<string, unknown>): string {
  const missing = textVariables(text).filter((name) => !lookupVariable(vars, name).found);
  if (missing.length > 0) throw new TemplateError(missing);
  return text.replace(PLACEHOLDER, (_match, name: string) => formatVariable(lookupVariable(vars, name).value));
}

/** Renders every message; all missing variables of all messages are reported in one `TemplateError`. */
export function renderMessages(messages: readonly ChatMessage[], vars: Record<string, unknown>): ChatMessage[] {
  const missing = templateVariables(messages).filter((name) => !lookupVariable(vars, name).found);
  if (missing.length > 0) throw new TemplateError(missing);
  return messages.map((m) => ({ role: m.role, content: renderTemplate(m.content, vars) }));
}

/** Prompt names are URL- and file-safe; `@` is excluded because `prompt_version` is `name@N`. */
export const PROMPT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export const chatMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().min(1, 'must not be empty'),
});

/** A prompt definition as pushed by `POST /v1/prompts` or `evalops prompt push FILE`. */
export const promptDefinitionSchema = z.strictObject({
  name: z
    .string()
    .regex(
      PROMPT_NAME_PATTERN,
      'must be 1-100 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit',
    ),
  description: z.string().max(2000).optional(),
  messages: z.array(chatMessageSchema).min(1, 'must hold at least one message'),
  params: z.record(z.string(), z.unknown()).default({}),
});

export type PromptDefinition = z.infer<typeof promptDefinitionSchema>;

/** `prompt_version` of version `n` of prompt `name`. */
export function promptVersion(name: string, version: number): string {
  return `${name}@${version}`;
}

/** Splits `name@N`; returns null when the text is not a prompt version. */
export function parsePromptVersion(text: string): { name: string; version: number } | null {
  const at = text.lastIndexOf('@');
  if (at <= 0) return null;
  const name = text.slice(0, at);
  const digits = text.slice(at + 1);
  if (!PROMPT_NAME_PATTERN.test(name) || !/^[1-9][0-9]{0,8}$/.test(digits)) return null;
  return { name, version: Number(digits) };
}

/** Validates an already-parsed prompt definition; throws `EvalValidationError` naming each bad field. */
export function parsePromptDefinition(value: unknown, source = 'prompt'): PromptDefinition {
  const result = promptDefinitionSchema.safeParse(value);
  if (!result.success) {
    const details = formatZodIssues(result.error);
    throw new EvalValidationError(`${source} is not a valid prompt definition: ${details.join('; ')}`, details);
  }
  return result.data;
}

/**
 * Parses a prompt file: `.json` as JSON, `.yaml`/`.yml` as YAML, anything else as YAML (a JSON
 * document is also YAML). Errors name the file, the line for syntax errors, and the field otherwise.
 */
export function parsePromptFile(text: string, filename: string): PromptDefinition {
  const ext = extname(filename).toLowerCase();
  let value: unknown;
  try {
    value = ext === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: false });
  } catch (error) {
    // prettyErrors would add a multi-line code frame; the line number alone is computed from the offset.
    const where = error instanceof YAMLParseError ? ` at line ${lineOf(text, error.pos[0])}` : '';
    const what = error instanceof Error ? error.message : String(error);
    const message = `${filename}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}${where}: ${what}`;
    throw new EvalValidationError(message, [message], error);
  }
  return parsePromptDefinition(value, filename);
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line += 1;
  return line;
}
