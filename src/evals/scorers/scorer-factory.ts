import { z } from 'zod';
import { EvalError, EvalValidationError, formatZodIssues } from '../eval-errors.ts';
import { createProvider, providerConfigSchema, type ProviderFactoryDeps } from '../providers/provider-factory.ts';
import type { Provider } from '../providers/provider.ts';
import { containsScorer } from './contains-scorer.ts';
import { exactScorer } from './exact-scorer.ts';
import { compileJsonSchema, jsonSchemaScorer } from './json-schema-scorer.ts';
import { jsonValidScorer } from './json-valid-scorer.ts';
import { UnsupportedPatternError } from './linear-regex.ts';
import { llmJudgeScorer } from './llm-judge-scorer.ts';
import { numericScorer } from './numeric-scorer.ts';
import { compileScorerRegex, regexScorer } from './regex-scorer.ts';
import { withThreshold, type Scorer } from './scorer.ts';
import { similarityScorer } from './similarity-scorer.ts';

/**
 * The scorer list of an evaluation, as users write it: a flat object per scorer
 * (`{name: "answer", type: "exact", case_insensitive: true, threshold: 1}`). Everything that can be
 * wrong with it (duplicate names, an invalid regex, an invalid JSON Schema) is reported when the
 * evaluation is submitted, with the field path, not when the first case is scored.
 */

/** Names become result columns and MLflow metric keys: keep them short and plain. */
const scorerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 characters of letters, digits, ".", "_" or "-"');
/** When set, pass = score >= threshold, whatever the scorer would decide on its own. */
const threshold = z.number().min(0).max(1).optional();
const normalisation = {
  trim: z.boolean().optional(),
  case_insensitive: z.boolean().optional(),
  collapse_whitespace: z.boolean().optional(),
};

export const scorerConfigSchema = z.discriminatedUnion('type', [
  z.strictObject({ name: scorerName, type: z.literal('exact'), threshold, value: z.string().optional(), ...normalisation }),
  z.strictObject({
    name: scorerName,
    type: z.literal('contains'),
    threshold,
    value: z.string().min(1).optional(),
    case_insensitive: z.boolean().optional(),
  }),
  z.strictObject({
    name: scorerName,
    type: z.literal('regex'),
    threshold,
    pattern: z.string().min(1),
    flags: z.string().optional(),
  }),
  z.strictObject({ name: scorerName, type: z.literal('json_valid'), threshold, allow_code_fence: z.boolean().optional() }),
  z.strictObject({
    name: scorerName,
    type: z.literal('json_schema'),
    threshold,
    schema: z.record(z.string(), z.unknown()),
    allow_code_fence: z.boolean().optional(),
  }),
  z.strictObject({
    name: scorerName,
    type: z.literal('numeric'),
    threshold,
    value: z.number().optional(),
    absolute: z.number().min(0).optional(),
    relative: z.number().min(0).optional(),
    pick: z.enum(['first', 'last']).optional(),
  }),
  z.strictObject({ name: scorerName, type: z.literal('similarity'), threshold, value: z.string().optional(), ...normalisation }),
  z.strictObject({
    name: scorerName,
    type: z.literal('llm_judge'),
    threshold,
    /** A provider name the service knows (e.g. the run's own provider), or an inline provider config. */
    provider: z.union([z.string().min(1), providerConfigSchema]),
    model: z.string().min(1),
    rubric: z.string().min(1).optional(),
    system: z.string().min(1).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    seed: z.number().int().optional(),
  }),
]);

export const scorerListSchema = z
  .array(scorerConfigSchema)
  .min(1, 'at least one scorer is needed')
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, scorer] of list.entries()) {
      const first = seen.get(scorer.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `'${scorer.name}' is already the name of scorer ${first}` });
      } else {
        seen.set(scorer.name, i);
      }
      // Patterns RE2 cannot run (lookaround, backreferences) are valid input the service refuses:
      // parseScorerList reports them as a 422 once the list is otherwise valid.
      if (scorer.type === 'regex') {
        try {
          compileScorerRegex(scorer);
        } catch (error) {
          if (!(error instanceof UnsupportedPatternError)) ctx.addIssue({ code: 'custom', path: [i, 'pattern'], message: `invalid regular expression: ${messageOf(error)}` });
        }
      }
      if (scorer.type === 'json_schema') {
        try {
          compileJsonSchema(scorer.schema);
        } catch (error) {
          if (!(error instanceof UnsupportedPatternError)) ctx.addIssue({ code: 'custom', path: [i, 'schema'], message: `invalid JSON Schema: ${messageOf(error)}` });
        }
      }
    }
  });

export type ScorerConfig = z.infer<typeof scorerConfigSchema>;

/**
 * Validates a scorer list; throws `EvalValidationError` naming each bad field (`scorers.1.pattern: ...`),
 * or an `UNPROCESSABLE` error naming the regex feature the linear-time engine lacks.
 */
export function parseScorerList(value: unknown, path = 'scorers'): ScorerConfig[] {
  const result = scorerListSchema.safeParse(value);
  if (!result.success) {
    const details = formatZodIssues(result.error, path);
    throw new EvalValidationError(`invalid scorers: ${details.join('; ')}`, details);
  }
  const unsupported: string[] = [];
  for (const [i, scorer] of result.data.entries()) {
    try {
      if (scorer.type === 'regex') compileScorerRegex(scorer);
      if (scorer.type === 'json_schema') compileJsonSchema(scorer.schema);
    } catch (error) {
      if (error instanceof UnsupportedPatternError) unsupported.push(`${path}.${i}.${scorer.type === 'regex' ? 'pattern' : 'schema'}: ${error.message}`);
    }
  }
  if (unsupported.length > 0) {
    throw new EvalError('UNPROCESSABLE', `unsupported pattern: ${unsupported.join('; ')}; patterns use RE2 syntax, which matches in linear time`, { problems: unsupported });
  }
  return result.data;
}

export interface ScorerFactoryDeps {
  /** Finds a provider by the name an `llm_judge` config gives. */
  resolveProvider?: (name: string) => Provider | undefined;
  /** Used to build inline judge providers (environment, fetch, ...). */
  providerDeps?: ProviderFactoryDeps;
  /**
   * Lets the caller wrap a judge provider (typically with the response cache, so that replay mode
   * answers judge calls from the record too).
   */
  wrapJudgeProvider?: (provider: Provider, scorer: ScorerConfig) => Provider;
}

/** Builds the scorers of a validated list, in order. */
export function createScorers(configs: readonly ScorerConfig[], deps: ScorerFactoryDeps = {}): Scorer[] {
  return configs.map((config, i) => {
    const scorer = createOne(config, i, deps);
    // similarity and llm_judge apply the threshold themselves, with a reason that says so.
    if (config.threshold !== undefined && config.type !== 'similarity' && config.type !== 'llm_judge') {
      return withThreshold(scorer, config.threshold);
    }
    return scorer;
  });
}

function createOne(config: ScorerConfig, index: number, deps: ScorerFactoryDeps): Scorer {
  switch (config.type) {
    case 'exact':
      return exactScorer(config.name, config);
    case 'contains':
      return containsScorer(config.name, config);
    case 'regex':
      return regexScorer(config.name, config);
    case 'json_valid':
      return jsonValidScorer(config.name, config);
    case 'json_schema':
      return jsonSchemaScorer(config.name, config);
    case 'numeric':
      return numericScorer(config.name, config);
    case 'similarity':
      return similarityScorer(config.name, config);
    case 'llm_judge': {
      let provider: Provider | undefined;
      if (typeof config.provider === 'string') {
        provider = deps.resolveProvider?.(config.provider);
        if (provider === undefined) {
          throw new EvalValidationError(`scorers.${index}.provider: no provider named '${config.provider}'`);
        }
      } else {
        provider = createProvider(config.provider, deps.providerDeps, `scorers.${index}.provider`);
      }
      if (deps.wrapJudgeProvider) provider = deps.wrapJudgeProvider(provider, config);
      return llmJudgeScorer(config.name, {
        provider,
        model: config.model,
        rubric: config.rubric,
        system: config.system,
        params: config.params,
        seed: config.seed,
        threshold: config.threshold,
      });
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
