import { z } from 'zod';
import { EvalValidationError, formatZodIssues } from './eval-errors.ts';
import { type ProviderConfig, parseProviderConfig } from './providers/provider-factory.ts';
import { parseScorerList, type ScorerConfig } from './scorers/scorer-factory.ts';

/**
 * What `POST /v1/evaluations` (and `evalops eval run`) accepts. The provider and scorer lists are
 * validated by their own factories so their errors name the field (`scorers.1.pattern: ...`).
 */

const scorerName = z.string().min(1).max(64);
const unit = z.number().min(0).max(1);

export const evaluationRequestSchema = z.strictObject({
  prompt_version: z.string().min(1).max(120).describe('name@N, or a name for its latest version'),
  data_snapshot_id: z.string().min(1).max(80).describe('sha256:<hex> from POST /v1/datasets'),
  provider: z
    .union([z.string().min(1), z.record(z.string(), z.unknown())])
    .describe('"echo", or {type: "openai", base_url, api_key_env, ...}, {type: "http", ...}, {type: "echo"}'),
  model: z.string().min(1).max(200).optional().describe('model name sent to the provider (default "echo" for echo)'),
  params: z.record(z.string(), z.unknown()).optional().describe("sampling params, merged over the prompt version's params"),
  scorers: z.array(z.record(z.string(), z.unknown())).optional().describe('scorer configs; default [{name: "exact", type: "exact"}]'),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  mode: z.enum(['live', 'replay']).default('live'),
  sample_size: z.number().int().min(1).max(100_000_000).optional().describe('evaluate this many cases, drawn by seeded sampling'),
  concurrency: z.number().int().min(1).max(256).default(8).describe('provider requests in flight at once'),
  thresholds: z
    .record(scorerName, z.union([unit, z.strictObject({ pass_rate: unit.optional(), mean: unit.optional() })]))
    .optional()
    .describe('{scorer: min pass rate} or {scorer: {pass_rate, mean}}; the CLI exits non-zero when one fails'),
  name: z.string().min(1).max(200).optional().describe('a label for the run (MLflow run name)'),
});

export type EvaluationRequest = z.input<typeof evaluationRequestSchema>;

/** A validated, normalised run specification: what the runner needs, stored on the run row. */
export interface EvaluationSpec {
  prompt_version: string;
  data_snapshot_id: string;
  provider: ProviderConfig;
  model: string;
  params: Record<string, unknown>;
  scorers: ScorerConfig[];
  seed: number;
  mode: 'live' | 'replay';
  sample_size: number | null;
  concurrency: number;
  thresholds: Record<string, number | { pass_rate?: number | undefined; mean?: number | undefined }> | null;
  name: string | null;
}

const SECRET_HEADER = /authorization|api[-_]?key|token|secret|password|cookie/i;
const ENV_ONLY = /^(?:[^{}]*\{\{\s*env\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}[^{}]*)+$/;

/** Credentials must come from the environment: a literal secret would be stored with the run. */
function checkHeaders(headers: Record<string, string> | undefined, path: string): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (SECRET_HEADER.test(name) && !ENV_ONLY.test(value)) {
      problems.push(`${path}.headers.${name}: put the secret in an environment variable and write {{env.NAME}} here`);
    }
  }
  return problems;
}

/**
 * Validates a request into a spec (prompt version not yet resolved). Throws `EvalValidationError`
 * with one problem per bad field.
 */
export function parseEvaluationRequest(input: unknown): EvaluationSpec {
  const parsed = evaluationRequestSchema.safeParse(input);
  if (!parsed.success) {
    const problems = formatZodIssues(parsed.error);
    throw new EvalValidationError(`invalid evaluation: ${problems.join('; ')}`, problems);
  }
  const r = parsed.data;
  const provider = parseProviderConfig(typeof r.provider === 'string' ? { type: r.provider } : r.provider, 'provider');
  const scorers = parseScorerList(r.scorers ?? [{ name: 'exact', type: 'exact' }], 'scorers');
  const problems = [
    ...checkHeaders('headers' in provider ? provider.headers : undefined, 'provider'),
    ...scorers.flatMap((s, i) => (s.type === 'llm_judge' && typeof s.provider === 'object' && 'headers' in s.provider ? checkHeaders(s.provider.headers, `scorers.${i}.provider`) : [])),
  ];
  for (const [i, s] of scorers.entries()) {
    if (s.type === 'llm_judge' && typeof s.provider === 'string' && s.provider !== 'run' && s.provider !== provider.type) {
      problems.push(`scorers.${i}.provider: '${s.provider}' is not a provider of this run; use "run" (the run's own provider) or an inline provider config`);
    }
  }
  const model = r.model ?? (provider.type === 'echo' ? 'echo' : undefined);
  if (model === undefined) problems.push(`model: required for the ${provider.type} provider`);
  for (const name of Object.keys(r.thresholds ?? {})) {
    if (!scorers.some((s) => s.name === name)) problems.push(`thresholds.${name}: no scorer is named '${name}' (scorers: ${scorers.map((s) => s.name).join(', ')})`);
  }
  if (problems.length > 0) throw new EvalValidationError(`invalid evaluation: ${problems.join('; ')}`, problems);
  return {
    prompt_version: r.prompt_version,
    data_snapshot_id: r.data_snapshot_id,
    provider,
    model: model!,
    params: r.params ?? {},
    scorers,
    seed: r.seed,
    mode: r.mode,
    sample_size: r.sample_size ?? null,
    concurrency: r.concurrency,
    thresholds: r.thresholds ?? null,
    name: r.name ?? null,
  };
}
