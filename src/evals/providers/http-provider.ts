import { canonicalJson } from '../canonical-json.ts';
import { EvalValidationError } from '../eval-errors.ts';
import { formatVariable, lookupVariable, textVariables } from '../prompt-template.ts';
import { AdaptiveLimiter } from './adaptive-limiter.ts';
import {
  ProviderError,
  redactUrl,
  type CompleteOptions,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
  type ProviderDescription,
  type TokenUsage,
} from './provider.ts';
import { postJsonWithRetry, type RetryingPostDeps, type RetryPolicy } from './retrying-post.ts';

/**
 * A team's own endpoint: a JSON POST built from a body template, the answer read at a path.
 *
 * Template variables: `{{prompt}}` (the message contents joined by blank lines, for completion-style
 * endpoints), `{{messages}}` (the chat messages array), `{{model}}`, `{{seed}}`, `{{params}}` and
 * `{{params.x}}`. A string that is exactly one placeholder is replaced by the value itself (so
 * `"messages": "{{messages}}"` sends an array and `"seed": "{{seed}}"` a number); a placeholder
 * inside longer text is interpolated as text.
 */

export interface HttpProviderOptions extends RetryPolicy {
  url: string;
  /** Already resolved headers (the factory substitutes secrets from the environment). */
  headers?: Record<string, string>;
  bodyTemplate: unknown;
  /** Where the output is in the answer, dotted, array indexes as numbers: `data.choices.0.text`. */
  responsePath: string;
  /** Optional path of an OpenAI-style usage object (`prompt_tokens`, `completion_tokens`, `total_tokens`). */
  usagePath?: string;
  /** @defaultValue 8 */
  maxConcurrency?: number;
}

const TEMPLATE_ROOTS = new Set(['prompt', 'messages', 'model', 'seed', 'params']);
const WHOLE_PLACEHOLDER = /^\{\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}$/;

/** Lists template placeholders whose root is not one of prompt/messages/model/seed/params. */
export function unknownBodyTemplateVariables(template: unknown): string[] {
  const unknown = new Set<string>();
  walkStrings(template, (text) => {
    for (const name of textVariables(text)) {
      if (!TEMPLATE_ROOTS.has(name.split('.')[0] as string)) unknown.add(name);
    }
  });
  return [...unknown];
}

/** Substitutes the request into the body template (see the module comment for the rules). */
export function renderBodyTemplate(template: unknown, context: Record<string, unknown>): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE_PLACEHOLDER.exec(template);
    if (whole !== null) {
      const found = lookupVariable(context, whole[1] as string);
      return found.found ? found.value : null;
    }
    return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g, (_m, name: string) => {
      const found = lookupVariable(context, name);
      return found.found ? formatVariable(found.value) : '';
    });
  }
  if (Array.isArray(template)) return template.map((item) => renderBodyTemplate(item, context));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      // defineProperty: a template key named `__proto__` stays a key.
      Object.defineProperty(out, key, {
        value: renderBodyTemplate(value, context),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return template;
}

/** Reads a dotted path (`data.choices.0.text`, an optional leading `$.`) from a parsed JSON value. */
export function readPath(value: unknown, path: string): { found: true; value: unknown } | { found: false; failedAt: string } {
  const segments = path.replace(/^\$\.?/, '').split('.').filter((s) => s !== '');
  let current = value;
  const walked: string[] = [];
  for (const segment of segments) {
    walked.push(segment);
    if (current !== null && typeof current === 'object' && Object.hasOwn(current, segment)) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      return { found: false, failedAt: walked.join('.') };
    }
  }
  return { found: true, value: current };
}

export class HttpProvider implements Provider {
  readonly type = 'http';
  readonly limiter: AdaptiveLimiter;
  readonly #options: HttpProviderOptions;
  readonly #deps: RetryingPostDeps;

  constructor(options: HttpProviderOptions, deps: Omit<RetryingPostDeps, 'limiter'> = {}) {
    const unknown = unknownBodyTemplateVariables(options.bodyTemplate);
    if (unknown.length > 0) {
      throw new EvalValidationError(
        `http provider: bodyTemplate uses unknown ${unknown.length === 1 ? 'variable' : 'variables'} ` +
          `${unknown.join(', ')} (available: prompt, messages, model, seed, params.*)`,
      );
    }
    this.#options = options;
    this.limiter = new AdaptiveLimiter({ max: options.maxConcurrency ?? 8 });
    this.#deps = { ...deps, limiter: this.limiter };
  }

  /** `{type: 'http', base_url}` with any credentials removed from the URL. */
  describe(): ProviderDescription {
    return { type: this.type, base_url: redactUrl(this.#options.url) };
  }

  /** POSTs the rendered body template and reads the output at `responsePath`. */
  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    const label = `http provider at ${redactUrl(this.#options.url)}`;
    const context: Record<string, unknown> = {
      prompt: request.messages.map((m) => m.content).join('\n\n'),
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      model: request.model,
      seed: request.seed,
      params: request.params,
    };
    const headers = { ...this.#options.headers };
    const result = await postJsonWithRetry(
      {
        url: this.#options.url,
        headers,
        body: renderBodyTemplate(this.#options.bodyTemplate, context),
        label,
        secrets: Object.values(headers),
        signal: options.signal,
      },
      this.#options,
      this.#deps,
    );
    const found = readPath(result.json, this.#options.responsePath);
    if (!found.found) {
      throw new ProviderError(
        `${label}: the answer has no value at '${this.#options.responsePath}' (nothing at '${found.failedAt}')`,
        { retryable: false, status: result.status },
      );
    }
    const output =
      typeof found.value === 'string'
        ? found.value
        : found.value === null || found.value === undefined
          ? ''
          : typeof found.value === 'object'
            ? canonicalJson(found.value)
            : String(found.value);
    return {
      output,
      tokens: this.#usage(result.json),
      latencyMs: result.latencyMs,
      attempts: result.attempts,
      raw: result.json,
    };
  }

  #usage(json: unknown): TokenUsage | null {
    if (this.#options.usagePath === undefined) return null;
    const found = readPath(json, this.#options.usagePath);
    if (!found.found || found.value === null || typeof found.value !== 'object') return null;
    const usage = found.value as Record<string, unknown>;
    if (typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') return null;
    const total = typeof usage.total_tokens === 'number' ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
    return { prompt: usage.prompt_tokens, completion: usage.completion_tokens, total };
  }
}

function walkStrings(value: unknown, visit: (text: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) for (const item of value) walkStrings(item, visit);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) walkStrings(item, visit);
}
