import { execFile } from 'node:child_process';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';

/**
 * `run_metadata.json`: what makes a run reproducible and traceable. The JSON Schema below is the
 * contract: it is served at `/v1/schemas/run-metadata`, committed as `docs/run-metadata.schema.json`
 * (a unit test keeps the two equal) and used by `validateRunMetadata`, so the published schema and
 * the check a run must pass cannot drift apart.
 */

/** The keys the runbook (section C) checks first; a run without them is not reproducible. */
export const RUN_METADATA_REQUIRED_KEYS = ['commit_sha', 'prompt_version', 'data_snapshot_id', 'seed', 'mode'] as const;

export const RUN_METADATA_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:evalops:schema:run-metadata:1',
  title: 'evalops run_metadata',
  description:
    'Metadata of one evaluation run: what was evaluated (prompt version, dataset snapshot, model, params, ' +
    'scorers), how (seed, mode, sample size) and from which code (commit). Written as run_metadata.json ' +
    'beside results.jsonl and summary.json. Never holds credentials.',
  type: 'object',
  required: [...RUN_METADATA_REQUIRED_KEYS],
  properties: {
    schema_version: { description: 'Version of this schema.', const: 1 },
    run_id: { type: 'string', minLength: 1 },
    commit_sha: {
      description: 'Commit of the evaluated code: COMMIT_SHA, else `git rev-parse HEAD`, else "unknown".',
      type: 'string',
      pattern: '^([0-9a-f]{7,64}|unknown)$',
    },
    git_dirty: {
      description: 'Whether the working tree had uncommitted changes; null when unknown.',
      type: ['boolean', 'null'],
    },
    prompt_version: { description: 'name@N', type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,99}@[1-9][0-9]*$' },
    data_snapshot_id: {
      description: 'sha256: + hex SHA-256 of the canonical JSONL of the dataset.',
      type: 'string',
      pattern: '^sha256:[0-9a-f]{64}$',
    },
    seed: { type: 'integer', minimum: 0, maximum: 9007199254740991 },
    mode: { description: 'live: call the provider and record; replay: answer only from the record.', enum: ['live', 'replay'] },
    started_at: { type: 'string', format: 'date-time' },
    finished_at: { type: ['string', 'null'], format: 'date-time' },
    provider: {
      type: 'object',
      required: ['type'],
      properties: {
        type: { type: 'string', minLength: 1 },
        base_url: {
          description: 'Endpoint URL without credentials (user-info, if any, masked as user:***@ or ***@); null for providers without an endpoint (echo).',
          type: ['string', 'null'],
          // `not` alone would also reject null (a pattern ignores non-strings, so `not` of it fails).
          // User-info is refused unless masked by the one URL redaction (src/config/url-redaction.ts).
          if: { type: 'string' },
          then: { not: { pattern: '^[A-Za-z][A-Za-z0-9+.-]*://(?!(?:[^/?#@:]*:)?\\*\\*\\*@)[^/?#]*@' } },
        },
      },
    },
    model: { type: 'string', minLength: 1 },
    params: { type: 'object' },
    scorers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'type'],
        properties: {
          name: { type: 'string', minLength: 1 },
          type: { type: 'string', minLength: 1 },
          threshold: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
    dataset: {
      type: 'object',
      required: ['row_count'],
      properties: { row_count: { type: 'integer', minimum: 0 } },
    },
    sample_size: { description: 'Cases drawn by seeded sampling; null when every row ran.', type: ['integer', 'null'], minimum: 1 },
    evalops_version: { type: 'string', minLength: 1 },
    node_version: { type: 'string', minLength: 1 },
  },
  additionalProperties: true,
} as const;

/** What the runner writes. Only the required keys are required by the schema; the runner fills all. */
export interface RunMetadata {
  schema_version?: 1;
  run_id: string;
  commit_sha: string;
  git_dirty: boolean | null;
  prompt_version: string;
  data_snapshot_id: string;
  seed: number;
  mode: 'live' | 'replay';
  started_at: string;
  finished_at: string | null;
  provider: { type: string; base_url: string | null };
  model: string;
  params: Record<string, unknown>;
  scorers: Array<{ name: string; type: string; threshold?: number; [option: string]: unknown }>;
  dataset: { row_count: number; [key: string]: unknown };
  sample_size: number | null;
  evalops_version: string;
  node_version: string;
  [key: string]: unknown;
}

export type RunMetadataValidation = { ok: true } | { ok: false; errors: string[] };

/** Friendlier sentences than a pattern dump, keyed by the instance path. */
const PATTERN_HINTS: Record<string, string> = {
  commit_sha: 'must be a lowercase hex commit id (7-64 digits) or "unknown"',
  prompt_version: 'must be name@N (e.g. "qa-prompt@3")',
  data_snapshot_id: 'must be "sha256:" followed by 64 lowercase hex digits',
};

let compiled: ReturnType<Ajv2020['compile']> | null = null;

function validator(): ReturnType<Ajv2020['compile']> {
  if (compiled === null) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, logger: false });
    ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
    compiled = ajv.compile(RUN_METADATA_SCHEMA);
  }
  return compiled;
}

/**
 * Checks `value` against the schema. Each error names its key: `missing required key: seed`,
 * `invalid seed: must be integer`, `invalid provider.base_url: must not contain credentials`.
 */
export function validateRunMetadata(value: unknown): RunMetadataValidation {
  const validate = validator();
  if (validate(value)) return { ok: true };
  // An `if` failure only repeats the specific error of its `then` branch.
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if').map(describeError);
  return { ok: false, errors: [...new Set(errors)] };
}

function describeError(error: ErrorObject): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty?: unknown }).missingProperty);
    return `missing required key: ${path === '' ? missing : `${path}.${missing}`}`;
  }
  const where = path === '' ? 'run_metadata' : path;
  if (error.keyword === 'pattern' && PATTERN_HINTS[path] !== undefined) return `invalid ${where}: ${PATTERN_HINTS[path]}`;
  if (error.keyword === 'not' && path === 'provider.base_url') return `invalid ${where}: must not contain credentials`;
  if (error.keyword === 'enum') {
    const allowed = (error.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    return `invalid ${where}: must be one of ${allowed.map(String).join(', ')}`;
  }
  return `invalid ${where}: ${error.message ?? 'is invalid'}`;
}

export interface CommitInfo {
  commitSha: string;
  /** Null when not known (COMMIT_SHA given, or no git). */
  dirty: boolean | null;
  source: 'env' | 'git' | 'unknown';
}

/** Runs git with arguments in `cwd` and resolves its stdout; injectable for tests. */
export type GitRunner = (args: readonly string[], cwd: string) => Promise<string>;

const runGitCommand: GitRunner = (args, cwd) =>
  new Promise((resolve, reject) => {
    execFile('git', [...args], { cwd, timeout: 5_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout);
    });
  });

/**
 * The commit to record: `COMMIT_SHA` from the environment (CI sets it; the tree state is then
 * unknown), else `git rev-parse HEAD` in `cwd` with `dirty` from `git status --porcelain`
 * (untracked files count: an uncommitted dataset or prompt changes what ran), else "unknown".
 */
export async function resolveCommitSha(
  env: Record<string, string | undefined>,
  cwd: string,
  runGit: GitRunner = runGitCommand,
): Promise<CommitInfo> {
  const fromEnv = env.COMMIT_SHA?.trim();
  if (fromEnv !== undefined && fromEnv !== '') return { commitSha: fromEnv.toLowerCase(), dirty: null, source: 'env' };
  let head: string;
  try {
    head = (await runGit(['rev-parse', 'HEAD'], cwd)).trim().toLowerCase();
  } catch {
    return { commitSha: 'unknown', dirty: null, source: 'unknown' };
  }
  if (!/^[0-9a-f]{7,64}$/.test(head)) return { commitSha: 'unknown', dirty: null, source: 'unknown' };
  let dirty: boolean | null;
  try {
    dirty = (await runGit(['status', '--porcelain'], cwd)).trim() !== '';
  } catch {
    dirty = null;
  }
  return { commitSha: head, dirty, source: 'git' };
}
