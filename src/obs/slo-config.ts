import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AppError } from '../errors.ts';

/**
 * The service's SLOs as data (`slo.yaml`). Everything that reports or alerts on an SLO reads this one
 * definition: `evalops slo`, `GET /v1/slo` and the generated Prometheus rules.
 */

/** How the good and bad events of an SLI are counted. */
export const SLI_KINDS = ['api_availability', 'job_success', 'evaluation_success'] as const;
export type SliKind = (typeof SLI_KINDS)[number];

/** Final statuses of a job or evaluation run that may count against its SLO. */
export const FAILURE_STATUSES = ['failed', 'cancelled'] as const;
export type FailureStatus = (typeof FAILURE_STATUSES)[number];

/**
 * Cancelled counts as bad by default. The runbook's section B names a rising share of `failed` *and*
 * `cancelled` jobs as the symptom and its SQL selects both; the jobs table does not record who
 * cancelled (a user, a shutdown, stalled-job recovery), so leaving cancellations out could hide a
 * service fault. A team whose users cancel on purpose sets `bad_statuses: [failed]` in slo.yaml.
 */
export const DEFAULT_BAD_STATUSES: readonly FailureStatus[] = ['failed', 'cancelled'];

/** Runbook sections of docs/runbook.md, one per SLO family. */
export const RUNBOOK_SECTIONS = {
  A: 'a-api-availability-drop',
  B: 'b-job-success-rate-drop',
  C: 'c-evaluation-run-failures',
} as const;
export type RunbookSection = keyof typeof RUNBOOK_SECTIONS;

/**
 * Fewer events than this in a window make the window `insufficient_data`: no ratio is shown and no
 * alert fires on it. Ten is where a single bad event stops being the whole story (one bad event in
 * ten is a 10% error ratio, still visible and still judged by a human); below it an SLI of 0% or
 * 100% says nothing. Per-SLO `min_events` overrides it.
 */
export const DEFAULT_MIN_EVENTS = 10;

/** The placeholder a query uses for the range of its rate(), as in Sloth's `{{.window}}`. */
export const WINDOW_PLACEHOLDER = '{{window}}';

const DURATION_UNITS_SECONDS = { m: 60, h: 3600, d: 86_400, w: 604_800 } as const;
const DURATION_PATTERN = /^([1-9]\d*)([mhdw])$/;

/** Seconds in a Prometheus-style duration such as `5m`, `6h`, `28d`; undefined when malformed. */
export function durationSeconds(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNITS_SECONDS[match[2] as keyof typeof DURATION_UNITS_SECONDS];
}

const durationSchema = z.string().refine((v) => durationSeconds(v) !== undefined, {
  message: 'must be a duration such as 28d, 4w or 720h (a whole number and one of m, h, d, w)',
});

const querySchema = z
  .string()
  .trim()
  .min(1, { message: 'must be a PromQL expression' })
  .refine((q) => q.includes(WINDOW_PLACEHOLDER), { message: `must contain ${WINDOW_PLACEHOLDER} where the rate range goes` });

const statusListSchema = z
  .array(z.enum(FAILURE_STATUSES, { message: `accepts ${FAILURE_STATUSES.join(' or ')}` }))
  .min(1, { message: 'must name at least one status' })
  .refine((list) => new Set(list).size === list.length, { message: 'must not repeat a status' });

const sliSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('api_availability'), error_query: querySchema.optional(), total_query: querySchema.optional() }),
    z.strictObject({ kind: z.literal('job_success'), bad_statuses: statusListSchema.optional(), error_query: querySchema.optional(), total_query: querySchema.optional() }),
    z.strictObject({ kind: z.literal('evaluation_success'), bad_statuses: statusListSchema.optional(), error_query: querySchema.optional(), total_query: querySchema.optional() }),
  ],
  { message: `kind accepts ${SLI_KINDS.join(', ')}` },
);

const sloSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, { message: 'must be lower-case letters, digits and dashes, starting with a letter' }),
  description: z.string().trim().min(1, { message: 'must describe the SLO in a sentence' }),
  objective: z
    .number({ message: 'must be a percentage such as 99.9' })
    .gt(0, { message: 'must be a percentage above 0 and below 100, such as 99.9' })
    .lt(100, { message: 'must be a percentage above 0 and below 100, such as 99.9' }),
  window: durationSchema,
  sli: sliSchema,
  runbook: z.enum(['A', 'B', 'C'], { message: 'accepts A, B or C (the runbook section)' }),
  min_events: z.number().int({ message: 'must be a whole number' }).min(1, { message: 'must be at least 1' }).optional(),
});

const fileSchema = z.strictObject({
  version: z.literal(1, { message: 'must be 1' }),
  service: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, { message: 'must be lower-case letters, digits, - and _' }).default('evalops'),
  runbook_url: z.string().trim().min(1).default('docs/runbook.md'),
  min_events: z.number().int({ message: 'must be a whole number' }).min(1, { message: 'must be at least 1' }).default(DEFAULT_MIN_EVENTS),
  slos: z
    .array(sloSchema)
    .min(1, { message: 'must define at least one SLO' })
    .superRefine((slos, ctx) => {
      const seen = new Set<string>();
      slos.forEach((slo, i) => {
        if (seen.has(slo.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `repeats the SLO name "${slo.name}"` });
        seen.add(slo.name);
      });
    }),
});

/** One SLO, resolved: ratios instead of percentages, queries filled in from the SLI kind. */
export interface SloDefinition {
  readonly name: string;
  readonly description: string;
  /** The objective as a percentage, as written (99.9). */
  readonly objectivePercent: number;
  /** The objective as a ratio (0.999). */
  readonly objective: number;
  /** 1 - objective: the share of events allowed to be bad. */
  readonly errorBudget: number;
  readonly window: string;
  readonly windowSeconds: number;
  readonly sli: {
    readonly kind: SliKind;
    /**
     * Statuses counted as bad for job and evaluation SLIs; empty for API availability (bad = 5xx).
     * Good is `succeeded`; total is succeeded plus these, so a status left out is neither.
     */
    readonly badStatuses: readonly FailureStatus[];
    /** PromQL for the rate of bad events, with `{{window}}` for the range. */
    readonly errorQuery: string;
    /** PromQL for the rate of all events, with `{{window}}` for the range. */
    readonly totalQuery: string;
  };
  readonly runbookSection: RunbookSection;
  /** Link to the runbook section, e.g. `docs/runbook.md#a-api-availability-drop`. */
  readonly runbookUrl: string;
  readonly minEvents: number;
}

/** The resolved, frozen SLO configuration. */
export interface SloConfig {
  readonly service: string;
  /** Where the definition came from: a file path, or `built-in defaults`. */
  readonly source: string;
  readonly slos: readonly SloDefinition[];
}

/** The default slo.yaml, as data: the three SLOs the issue and the runbook's sections A, B, C ask for. */
export const DEFAULT_SLO_DOCUMENT = {
  version: 1,
  service: 'evalops',
  runbook_url: 'docs/runbook.md',
  min_events: DEFAULT_MIN_EVENTS,
  slos: [
    {
      name: 'api-availability',
      description: 'Share of HTTP requests not answered with a 5xx status.',
      objective: 99.9,
      window: '28d',
      sli: { kind: 'api_availability' },
      runbook: 'A',
    },
    {
      name: 'job-success',
      description: 'Share of jobs that ended (succeeded, failed or cancelled) that succeeded.',
      objective: 99,
      window: '28d',
      sli: { kind: 'job_success', bad_statuses: ['failed', 'cancelled'] },
      runbook: 'B',
    },
    {
      name: 'evaluation-run-success',
      description: 'Share of evaluation runs that ended that succeeded with their result files and a valid run_metadata.',
      objective: 99,
      window: '28d',
      sli: { kind: 'evaluation_success', bad_statuses: ['failed', 'cancelled'] },
      runbook: 'C',
    },
  ],
} as const;

/** An slo.yaml that cannot be used; the message names the file and the field. */
export class SloConfigError extends AppError {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super('VALIDATION', `${file}: ${problems.join('; ')}`, { file, problems: [...problems] });
    this.name = 'SloConfigError';
  }
}

/** Reads the SLO definitions from `path`, or returns the built-in defaults when `path` is undefined. */
export async function loadSloConfig(path: string | undefined): Promise<SloConfig> {
  if (path === undefined) return defaultSloConfig();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new SloConfigError(path, [`cannot read the SLO definitions (${reason})`]);
  }
  return parseSloConfig(text, path);
}

/** The built-in SLO definitions (the same as the repository's slo.yaml). */
export function defaultSloConfig(): SloConfig {
  return resolve(fileSchema.parse(DEFAULT_SLO_DOCUMENT), 'built-in defaults');
}

/** Parses and validates slo.yaml text; `source` names the file in error messages. */
export function parseSloConfig(text: string, source: string): SloConfig {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new SloConfigError(source, [`not valid YAML (${(err as Error).message.split('\n')[0]})`]);
  }
  if (document === null || document === undefined) throw new SloConfigError(source, ['the file is empty; it needs `version: 1` and a list of `slos`']);
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new SloConfigError(source, ['must be a mapping with `version: 1` and a list of `slos`']);
  }
  const parsed = fileSchema.safeParse(document);
  if (!parsed.success) {
    throw new SloConfigError(source, parsed.error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`));
  }
  return resolve(parsed.data, source);
}

/** `slos[1].objective` rather than zod's array of keys. */
function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/** Rounds away float noise such as 1 - 0.999 = 0.0010000000000000009; objectives have few digits. */
function tidy(x: number): number {
  return Number(x.toPrecision(12));
}

function resolve(file: z.infer<typeof fileSchema>, source: string): SloConfig {
  const slos = file.slos.map((slo): SloDefinition => {
    const badStatuses = slo.sli.kind === 'api_availability' ? [] : (slo.sli.bad_statuses ?? DEFAULT_BAD_STATUSES);
    const queries = defaultQueries(slo.sli.kind, badStatuses);
    return Object.freeze({
      name: slo.name,
      description: slo.description,
      objectivePercent: slo.objective,
      objective: tidy(slo.objective / 100),
      errorBudget: tidy((100 - slo.objective) / 100),
      window: slo.window,
      windowSeconds: durationSeconds(slo.window)!,
      sli: Object.freeze({
        kind: slo.sli.kind,
        badStatuses: Object.freeze([...badStatuses]),
        errorQuery: slo.sli.error_query ?? queries.errorQuery,
        totalQuery: slo.sli.total_query ?? queries.totalQuery,
      }),
      runbookSection: slo.runbook,
      runbookUrl: `${file.runbook_url}#${RUNBOOK_SECTIONS[slo.runbook]}`,
      minEvents: slo.min_events ?? file.min_events,
    });
  });
  return Object.freeze({ service: file.service, source, slos: Object.freeze(slos) });
}

/**
 * The PromQL of each SLI kind over the service's own metric names. Each query aggregates to one
 * series without labels, which the rule generator relies on to divide error by total.
 */
export function defaultQueries(kind: SliKind, badStatuses: readonly FailureStatus[]): { errorQuery: string; totalQuery: string } {
  const range = `[${WINDOW_PLACEHOLDER}]`;
  const badMatcher = `status=~"${badStatuses.join('|')}"`;
  // A status that is neither good nor bad (cancelled, when a team leaves it out) stays out of the total.
  const endedMatcher = `status=~"${['succeeded', ...badStatuses].join('|')}"`;
  switch (kind) {
    case 'api_availability':
      return {
        errorQuery: `sum(rate(http_requests_total{status_code=~"5.."}${range}))`,
        totalQuery: `sum(rate(http_requests_total${range}))`,
      };
    case 'job_success':
      return {
        errorQuery: `sum(rate(evalops_jobs_finished_total{${badMatcher}}${range}))`,
        totalQuery: `sum(rate(evalops_jobs_finished_total{${endedMatcher}}${range}))`,
      };
    case 'evaluation_success':
      return {
        errorQuery: `sum(rate(evalops_evaluation_runs_finished_total{${badMatcher}}${range}))`,
        totalQuery: `sum(rate(evalops_evaluation_runs_finished_total{${endedMatcher}}${range}))`,
      };
  }
}
