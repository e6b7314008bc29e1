import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import { conflict, notFound, validation } from '../errors.ts';

/**
 * What a key may do. `admin` implies every other scope: a key that can mint keys could give itself
 * any scope anyway, so pretending otherwise would protect nothing.
 */
export const SCOPES = ['read', 'jobs:write', 'evals:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Every key starts with this, so a leaked one is recognisable (secret scanners, log reviews). */
export const KEY_PREFIX = 'evk_';
/** `evk_` + 32 random bytes in base64url. */
const KEY_SHAPE = /^evk_[A-Za-z0-9_-]{43}$/;
/** Characters of the key kept in clear to tell keys apart: `evk_` and 8 more (48 random bits). */
const SHOWN_CHARS = 12;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A key as stored and shown: never the key itself. */
export interface ApiKeyInfo {
  key_id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

/** What a request authenticated with a key carries. */
export interface AuthenticatedKey {
  keyId: string;
  name: string;
  scopes: ReadonlySet<Scope>;
}

/**
 * SHA-256, not a slow password hash: keys are 256 random bits, so there is nothing to brute-force,
 * and the check runs on every request.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** True when `token` has the shape of a key this service issues (checked before any lookup). */
export function looksLikeApiKey(token: string): boolean {
  return KEY_SHAPE.test(token);
}

/** Whether a key's scopes grant `needed` (admin grants everything). */
export function hasScope(scopes: ReadonlySet<Scope>, needed: Scope): boolean {
  return scopes.has(needed) || scopes.has('admin');
}

/** Parses `read,jobs:write` (or a list) into scopes; unknown names are a validation error naming them. */
export function parseScopes(input: string | readonly string[]): Scope[] {
  const names = (typeof input === 'string' ? input.split(',') : [...input]).map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(SCOPES as readonly string[]).includes(n));
  if (unknown.length) throw validation(`scopes: ${unknown.map((u) => `"${u}"`).join(', ')} is not a scope; use ${SCOPES.join(', ')}`, { field: 'scopes' });
  if (names.length === 0) throw validation(`scopes: give at least one of ${SCOPES.join(', ')}`, { field: 'scopes' });
  return SCOPES.filter((s) => names.includes(s));
}

type Row = {
  key_id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_by: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
};
const COLUMNS = ['key_id', 'name', 'prefix', 'scopes', 'created_by', 'created_at', 'last_used_at', 'revoked_at', 'revoked_by'] as const;
const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toInfo(row: Row): ApiKeyInfo {
  return {
    key_id: row.key_id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes as Scope[],
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
    revoked_by: row.revoked_by,
  };
}

/** Stores a new key and returns it: the only moment the key exists outside the caller's hands. */
export async function createApiKey(db: Kysely<Database>, input: { name: string; scopes: readonly Scope[]; actor: string }): Promise<{ key: string; info: ApiKeyInfo }> {
  if (!NAME.test(input.name)) throw validation(`name: "${input.name.slice(0, 80)}" is not a key name (1-64 letters, digits, ".", "_", "-", starting with a letter or digit)`, { field: 'name' });
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const row = await db
    .insertInto('api_keys')
    .values({ key_id: randomUUID(), name: input.name, prefix: key.slice(0, SHOWN_CHARS), key_hash: hashApiKey(key), scopes: [...input.scopes], created_by: input.actor })
    .onConflict((oc) => oc.column('name').where('revoked_at', 'is', null).doNothing())
    .returning(COLUMNS)
    .executeTakeFirst();
  if (!row) throw conflict(`name: an active key named "${input.name}" exists; revoke it first or choose another name`);
  return { key, info: toInfo(row) };
}

/** Keys newest first; revoked ones only when asked. */
export async function listApiKeys(db: Kysely<Database>, options: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
  let query = db.selectFrom('api_keys').select(COLUMNS).orderBy('created_at', 'desc').orderBy('key_id');
  if (!options.includeRevoked) query = query.where('revoked_at', 'is', null);
  return (await query.execute()).map(toInfo);
}

/** Revokes the active key with this name, or the key with this id. */
export async function revokeApiKey(db: Kysely<Database>, nameOrId: string, actor: string): Promise<ApiKeyInfo> {
  const byId = UUID.test(nameOrId);
  if (!byId && !NAME.test(nameOrId)) throw validation(`"${nameOrId.slice(0, 80)}" is neither a key name nor a key id`, { field: 'key' });
  const row = await db
    .updateTable('api_keys')
    .set({ revoked_at: sql`now()`, revoked_by: actor })
    .where(byId ? 'key_id' : 'name', '=', nameOrId)
    .where('revoked_at', 'is', null)
    .returning(COLUMNS)
    .executeTakeFirst();
  if (row) return toInfo(row);
  if (byId) {
    const existing = await db.selectFrom('api_keys').select(['revoked_at']).where('key_id', '=', nameOrId).executeTakeFirst();
    if (existing?.revoked_at) throw conflict(`key ${nameOrId} was already revoked at ${existing.revoked_at.toISOString()}`);
  }
  throw notFound('active API key', byId ? nameOrId : `named "${nameOrId}"`);
}

/** The key with this hash (revoked or not), or undefined when no key has it. */
export async function findKeyByHash(db: Kysely<Database>, keyHash: string): Promise<(AuthenticatedKey & { revokedAt: Date | null }) | undefined> {
  const row = await db.selectFrom('api_keys').select(['key_id', 'name', 'scopes', 'revoked_at']).where('key_hash', '=', keyHash).executeTakeFirst();
  return row ? { keyId: row.key_id, name: row.name, scopes: new Set(row.scopes as Scope[]), revokedAt: row.revoked_at } : undefined;
}

export async function countActiveKeys(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('api_keys').select((eb) => eb.fn.countAll<number>().as('n')).where('revoked_at', 'is', null).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Records use at most once a minute per key, so reads do not turn into a write per request. */
export async function touchApiKey(db: Kysely<Database>, keyId: string): Promise<void> {
  await db
    .updateTable('api_keys')
    .set({ last_used_at: sql`now()` })
    .where('key_id', '=', keyId)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]))
    .execute();
}
