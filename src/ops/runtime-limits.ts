import { type Kysely, sql } from 'kysely';
import type { Config } from '../config/config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { AppError, validation } from '../errors.ts';
import type { Logger } from '../obs/logger.ts';

/**
 * Limits an operator can change while the service runs (`evalops limits set`): rows in the
 * runtime_limits table override the defaults from the environment. Every API process holds them in
 * memory and reloads on `NOTIFY evalops_limits` (sent by a trigger on the table), with a poll every
 * LIMITS_REFRESH_MS in case a notification is lost.
 */

export interface LimitDefinition {
  /** `job.payload_bytes.<type>` stands for one name per job type. */
  readonly name: string;
  /** The variable that sets the default, or null when the default is another limit. */
  readonly env: string | null;
  readonly min: number;
  readonly max: number;
  /** 0 switches the limit off. */
  readonly zeroIsUnlimited: boolean;
  readonly meaning: string;
}

const MIB = 1024 * 1024;
export const PER_TYPE_PAYLOAD_PREFIX = 'job.payload_bytes.';
const JOB_TYPE = /^[A-Za-z0-9_.:-]{1,100}$/;

export const LIMIT_DEFINITIONS: readonly LimitDefinition[] = [
  { name: 'rate.read_per_minute', env: 'RATE_LIMIT_READ_PER_MINUTE', min: 0, max: 1_000_000_000, zeroIsUnlimited: true, meaning: 'GET requests per minute per API key (per IP when anonymous)' },
  { name: 'rate.write_per_minute', env: 'RATE_LIMIT_WRITE_PER_MINUTE', min: 0, max: 1_000_000_000, zeroIsUnlimited: true, meaning: 'POST/PUT/PATCH/DELETE requests per minute per API key (per IP when anonymous)' },
  { name: 'body.max_bytes', env: 'BODY_LIMIT_BYTES', min: 1024, max: 512 * MIB, zeroIsUnlimited: false, meaning: 'largest JSON request body (never above the BODY_LIMIT_BYTES of the process)' },
  { name: 'job.payload_bytes', env: 'JOB_PAYLOAD_LIMIT_BYTES', min: 2, max: 64 * MIB, zeroIsUnlimited: false, meaning: 'largest job payload (as JSON) for types without their own limit' },
  { name: `${PER_TYPE_PAYLOAD_PREFIX}<type>`, env: null, min: 2, max: 64 * MIB, zeroIsUnlimited: false, meaning: 'largest payload of jobs of that type (default: job.payload_bytes)' },
  { name: 'eval.max_cases_per_run', env: 'EVAL_MAX_CASES_PER_RUN', min: 0, max: 1_000_000_000, zeroIsUnlimited: true, meaning: 'most cases (after sampling) in one evaluation run' },
  { name: 'eval.max_concurrent_runs', env: 'EVAL_MAX_CONCURRENT_RUNS', min: 0, max: 100_000, zeroIsUnlimited: true, meaning: 'most evaluation runs queued or running at once' },
];

const PER_TYPE_DEFINITION = LIMIT_DEFINITIONS.find((d) => d.name.startsWith(PER_TYPE_PAYLOAD_PREFIX))!;

/** The definition governing `name`, or a validation error listing the names there are. */
export function limitDefinition(name: string): LimitDefinition {
  const fixed = LIMIT_DEFINITIONS.find((d) => d.name === name && d !== PER_TYPE_DEFINITION);
  if (fixed) return fixed;
  if (name.startsWith(PER_TYPE_PAYLOAD_PREFIX) && JOB_TYPE.test(name.slice(PER_TYPE_PAYLOAD_PREFIX.length))) return PER_TYPE_DEFINITION;
  throw validation(`"${name.slice(0, 120)}" is not a limit; the limits are ${LIMIT_DEFINITIONS.map((d) => d.name).join(', ')}`, { field: 'name' });
}

/**
 * Checks one `name=value` assignment; returns the parsed value or throws naming the limit and its
 * range. A per-type limit must name one of `jobTypes` (the types this service runs): a name such as
 * `job.payload_bytes.__proto__` or a misspelt type would be stored and never apply.
 */
export function checkLimitValue(name: string, value: unknown, jobTypes: readonly string[]): number {
  const def = limitDefinition(name);
  if (def === PER_TYPE_DEFINITION && !jobTypes.includes(name.slice(PER_TYPE_PAYLOAD_PREFIX.length))) {
    throw validation(`"${name.slice(0, 120)}" is not a limit: "${name.slice(PER_TYPE_PAYLOAD_PREFIX.length, 120)}" is not a job type; the job types are ${jobTypes.join(', ')}`, { field: 'name' });
  }
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < def.min || n > def.max) {
    const zero = def.zeroIsUnlimited ? ' (0 = unlimited)' : '';
    throw validation(`${name}: ${JSON.stringify(value)?.slice(0, 40)} is not a whole number from ${def.min} to ${def.max}${zero}`, { field: name });
  }
  return n;
}

/** The defaults that apply when the table has no row, from the environment. */
export function limitDefaults(config: Config): Record<string, number> {
  return {
    'rate.read_per_minute': config.limits.readPerMinute,
    'rate.write_per_minute': config.limits.writePerMinute,
    'body.max_bytes': config.bodyLimitBytes,
    'job.payload_bytes': config.jobs.payloadLimitBytes,
    'eval.max_cases_per_run': config.limits.evalMaxCasesPerRun,
    'eval.max_concurrent_runs': config.limits.evalMaxConcurrentRuns,
  };
}

export interface LimitRow {
  name: string;
  value: number;
  updated_at: Date;
  updated_by: string | null;
}

export async function readLimitRows(db: Kysely<Database>): Promise<LimitRow[]> {
  const rows = await db.selectFrom('runtime_limits').select(['name', 'value', 'updated_at', 'updated_by']).orderBy('name').execute();
  return rows.map((r) => ({ ...r, value: Number(r.value) }));
}

/** Sets several limits in one transaction (all or none). */
export async function upsertLimits(db: Kysely<Database>, entries: ReadonlyArray<{ name: string; value: number }>, actor: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const { name, value } of entries) {
      await trx
        .insertInto('runtime_limits')
        .values({ name, value, updated_by: actor })
        .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_by: actor, updated_at: sql`now()` }))
        .execute();
    }
  });
}

/** Removes runtime values so the defaults apply again; returns the names that had one. */
export async function deleteLimits(db: Kysely<Database>, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const rows = await db.deleteFrom('runtime_limits').where('name', 'in', [...names]).returning('name').execute();
  return rows.map((r) => r.name);
}

/** One line of `evalops limits show`. */
export interface EffectiveLimit {
  name: string;
  value: number;
  source: 'runtime' | 'default';
  default: number | null;
  /** The variable of the default. */
  env: string | null;
  unlimited: boolean;
  updated_at: string | null;
  updated_by: string | null;
  meaning: string;
}

/** Every limit with its effective value and where it comes from, per-type payload limits included. */
export function effectiveLimits(defaults: Record<string, number>, rows: readonly LimitRow[]): EffectiveLimit[] {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const out: EffectiveLimit[] = [];
  const line = (name: string, def: LimitDefinition, fallback: number): EffectiveLimit => {
    const row = byName.get(name);
    const value = row?.value ?? fallback;
    return {
      name,
      value,
      source: row ? 'runtime' : 'default',
      default: fallback,
      env: def.env,
      unlimited: def.zeroIsUnlimited && value === 0,
      updated_at: row ? row.updated_at.toISOString() : null,
      updated_by: row?.updated_by ?? null,
      meaning: def.meaning,
    };
  };
  for (const def of LIMIT_DEFINITIONS) {
    if (def === PER_TYPE_DEFINITION) {
      const payloadDefault = byName.get('job.payload_bytes')?.value ?? defaults['job.payload_bytes']!;
      for (const row of rows.filter((r) => r.name.startsWith(PER_TYPE_PAYLOAD_PREFIX))) out.push(line(row.name, def, payloadDefault));
      continue;
    }
    out.push(line(def.name, def, defaults[def.name]!));
  }
  return out;
}

/** What the evaluation service asks before it records a run (EvaluationService's `limits`). */
export interface EvaluationLimits {
  /** Throws LIMIT_EXCEEDED (422) when the run would have too many cases or too many runs are active. */
  assertCanStartRun(cases: number): Promise<void>;
}

/** The live view of the limits in one process. */
export class RuntimeLimits implements EvaluationLimits {
  #values = new Map<string, number>();
  #reloading: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(
    private readonly db: Kysely<Database>,
    private readonly defaults: Record<string, number>,
    private readonly bodyCap: number,
    private readonly logger: Logger,
  ) {}

  /** Loads the table, subscribes to its notifications and starts the fallback poll. */
  static async start(options: { database: DatabaseHandle; config: Config; logger: Logger }): Promise<RuntimeLimits> {
    const { database, config, logger } = options;
    const limits = new RuntimeLimits(database.db, limitDefaults(config), config.bodyLimitBytes, logger);
    await limits.reload();
    limits.#unlisten = await database.listen('evalops_limits', () => void limits.reload());
    limits.#timer = setInterval(() => void limits.reload(), config.limits.refreshMs);
    limits.#timer.unref();
    return limits;
  }

  /** Re-reads the table; concurrent calls fold into one more read. A failed read keeps the old values. */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#again = false;
        try {
          const rows = await readLimitRows(this.db);
          const next = new Map<string, number>();
          for (const row of rows) next.set(row.name, row.value);
          this.#values = next;
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'could not reload runtime limits; keeping the previous values');
        }
      } while (this.#again);
    })().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  #get(name: string): number {
    return this.#values.get(name) ?? this.defaults[name]!;
  }

  /** The setting that decided a value, for messages: the limit's name when set at runtime, else its variable. */
  #source(name: string): string {
    return this.#values.has(name) ? name : (LIMIT_DEFINITIONS.find((d) => d.name === name)?.env ?? name);
  }

  readPerMinute(): number {
    return this.#get('rate.read_per_minute');
  }

  writePerMinute(): number {
    return this.#get('rate.write_per_minute');
  }

  /** The effective body limit and the setting that decided it. */
  bodyLimit(): { limit: number; setting: string } {
    const runtime = this.#get('body.max_bytes');
    return runtime < this.bodyCap ? { limit: runtime, setting: this.#source('body.max_bytes') } : { limit: this.bodyCap, setting: 'BODY_LIMIT_BYTES' };
  }

  /** Largest payload for jobs of `type` (JobService asks on every submission). */
  jobPayloadLimit = (type: string): { limit: number; setting: string } => {
    const own = this.#values.get(PER_TYPE_PAYLOAD_PREFIX + type);
    if (own !== undefined) return { limit: own, setting: PER_TYPE_PAYLOAD_PREFIX + type };
    return { limit: this.#get('job.payload_bytes'), setting: this.#source('job.payload_bytes') };
  };

  async assertCanStartRun(cases: number): Promise<void> {
    const maxCases = this.#get('eval.max_cases_per_run');
    if (maxCases > 0 && cases > maxCases) {
      throw new AppError('LIMIT_EXCEEDED', `cases: the run would have ${cases} cases, over the limit of ${maxCases} per run (${this.#source('eval.max_cases_per_run')}); use sample_size to run fewer`, {
        field: 'sample_size',
        limit: maxCases,
        value: cases,
      });
    }
    const maxRuns = this.#get('eval.max_concurrent_runs');
    if (maxRuns > 0) {
      const active = await countActiveRuns(this.db);
      if (active >= maxRuns) {
        throw new AppError('LIMIT_EXCEEDED', `${active} evaluation runs are queued or running, the limit is ${maxRuns} at once (${this.#source('eval.max_concurrent_runs')}); retry when one finishes`, {
          limit: maxRuns,
          value: active,
        });
      }
    }
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#unlisten?.().catch(() => {});
    await this.#reloading;
  }
}

async function countActiveRuns(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('evaluation_runs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
