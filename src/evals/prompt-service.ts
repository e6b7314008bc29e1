import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import { notFound, validation } from '../errors.ts';
import { canonicalJson } from './canonical-json.ts';
import { type ChatMessage, parsePromptDefinition, parsePromptVersion, type PromptDefinition, promptVersion } from './prompt-template.ts';

/**
 * Prompts and their immutable versions. Pushing a definition creates version N+1 of its name;
 * pushing exactly the latest version again returns it instead of minting an identical one, so a CI
 * job that runs `evalops prompt push` on every commit does not inflate the version numbers.
 */

/** One stored version, as the API shows it. */
export interface PromptVersion {
  prompt_version: string;
  name: string;
  version: number;
  description: string | null;
  messages: ChatMessage[];
  params: Record<string, unknown>;
  content_hash: string;
  created_at: string;
}

export interface PromptSummary {
  name: string;
  latest_version: number;
  prompt_version: string;
  versions: number;
  updated_at: string;
}

type Row = {
  name: string;
  version: number;
  description: string | null;
  messages: unknown;
  params: unknown;
  content_hash: string;
  created_at: Date;
};

function toPromptVersion(row: Row): PromptVersion {
  return {
    prompt_version: promptVersion(row.name, row.version),
    name: row.name,
    version: row.version,
    description: row.description,
    messages: row.messages as ChatMessage[],
    params: (row.params ?? {}) as Record<string, unknown>,
    content_hash: row.content_hash,
    created_at: row.created_at.toISOString(),
  };
}

/** sha256 of what makes a version what it is (description is a note, not content). */
function contentHash(def: PromptDefinition): string {
  return `sha256:${createHash('sha256').update(canonicalJson({ messages: def.messages, params: def.params }), 'utf8').digest('hex')}`;
}

/** The latest version of `name`, or undefined. */
export function findLatestPrompt(db: Kysely<Database>, name: string): Promise<Row | undefined> {
  return db.selectFrom('prompts').selectAll().where('name', '=', name).orderBy('version', 'desc').limit(1).executeTakeFirst();
}

/** One version, or undefined. */
export function findPrompt(db: Kysely<Database>, name: string, version: number): Promise<Row | undefined> {
  return db.selectFrom('prompts').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst();
}

/** Inserts version `version`; undefined when another writer took that number first. */
async function insertPromptVersion(db: Kysely<Database>, def: PromptDefinition, version: number, hash: string): Promise<Row | undefined> {
  return db
    .insertInto('prompts')
    .values({
      name: def.name,
      version,
      description: def.description ?? null,
      messages: JSON.stringify(def.messages),
      params: JSON.stringify(def.params),
      content_hash: hash,
    })
    .onConflict((oc) => oc.columns(['name', 'version']).doNothing())
    .returningAll()
    .executeTakeFirst();
}

export class PromptService {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores the next version of the prompt (or returns the latest when identical: `created: false`). */
  async push(input: unknown): Promise<{ prompt: PromptVersion; created: boolean }> {
    const def = parsePromptDefinition(input, 'body');
    const hash = contentHash(def);
    // Racing pushes of the same name: the loser of a version number reads again and takes the next.
    for (let attempt = 0; attempt < 10; attempt++) {
      const latest = await findLatestPrompt(this.db, def.name);
      if (latest && latest.content_hash === hash) return { prompt: toPromptVersion(latest), created: false };
      const row = await insertPromptVersion(this.db, def, (latest?.version ?? 0) + 1, hash);
      if (row) return { prompt: toPromptVersion(row), created: true };
    }
    throw validation(`name: too many concurrent pushes of prompt '${def.name}'; retry`);
  }

  /** A version by `name@N` or `name` (the latest). */
  async get(ref: string): Promise<PromptVersion> {
    const parsed = parsePromptVersion(ref);
    if (parsed) {
      const row = await findPrompt(this.db, parsed.name, parsed.version);
      if (!row) {
        const latest = await findLatestPrompt(this.db, parsed.name);
        throw notFound('prompt version', `${ref}${latest ? ` (the latest version of ${parsed.name} is ${promptVersion(latest.name, latest.version)})` : ` (no prompt is named ${parsed.name})`}`);
      }
      return toPromptVersion(row);
    }
    if (!/^[a-z0-9][a-z0-9._-]{0,99}$/.test(ref)) throw validation(`prompt: "${ref}" is neither a prompt name nor name@N`, { field: 'prompt_version' });
    const latest = await findLatestPrompt(this.db, ref);
    if (!latest) throw notFound('prompt', ref);
    return toPromptVersion(latest);
  }

  /** Every version of `name`, newest first. */
  async versions(name: string): Promise<PromptVersion[]> {
    const rows = await this.db.selectFrom('prompts').selectAll().where('name', '=', name).orderBy('version', 'desc').execute();
    if (rows.length === 0) throw notFound('prompt', name);
    return rows.map(toPromptVersion);
  }

  /** Every prompt name with its latest version. */
  async list(): Promise<PromptSummary[]> {
    const rows = await this.db
      .selectFrom('prompts')
      .select(['name', sql<number>`max(version)::int`.as('latest'), sql<number>`count(*)::int`.as('count'), sql<Date>`max(created_at)`.as('updated_at')])
      .groupBy('name')
      .orderBy('name')
      .execute();
    return rows.map((r) => ({
      name: r.name,
      latest_version: Number(r.latest),
      prompt_version: promptVersion(r.name, Number(r.latest)),
      versions: Number(r.count),
      updated_at: new Date(r.updated_at).toISOString(),
    }));
  }
}
