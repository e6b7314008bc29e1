import type { Kysely } from 'kysely';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/schema.ts';
import { validation } from '../errors.ts';
import type { Logger } from '../obs/logger.ts';
import { type ApiKeyInfo, createApiKey, listApiKeys, parseScopes, revokeApiKey } from './api-key-service.ts';
import { checkLimitValue, deleteLimits, type EffectiveLimit, effectiveLimits, limitDefaults, limitDefinition, readLimitRows, upsertLimits } from './runtime-limits.ts';

/**
 * Writes one audit line: `{"audit": "<event>", "actor": "...", ...}`. The actor is a key's name
 * (`key:<name>`), the CLI (`cli:<os user>`) or `anonymous` on an open server; never a key or token.
 */
export function auditLog(logger: { info(obj: object, msg: string): void }, event: string, actor: string, fields: Record<string, unknown> = {}): void {
  logger.info({ audit: event, actor, ...fields }, `audit: ${event}`);
}

/**
 * Key and limit management, shared by the admin API, the CLI's local routes (embedded database) and
 * the CLI on PostgreSQL directly, so every path validates and audits the same way.
 */
export class AccessAdmin {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly config: Config,
    private readonly logger: Logger,
    /** The job types this service runs: the only names a per-type limit (`job.payload_bytes.<type>`) may take. */
    private readonly jobTypes: () => readonly string[],
    /** Called after a change, so this process applies it before answering (others learn by NOTIFY). */
    private readonly afterChange: (what: 'keys' | 'limits') => Promise<void> | void = () => {},
  ) {}

  /** Creates a key; the returned `key` is shown once and never stored. */
  async createKey(input: { name: string; scopes: string | readonly string[] }, actor: string): Promise<{ key: string; info: ApiKeyInfo }> {
    const scopes = parseScopes(input.scopes);
    const created = await createApiKey(this.db, { name: input.name, scopes, actor });
    await this.afterChange('keys');
    auditLog(this.logger, 'api_key.created', actor, { key_name: created.info.name, key_id: created.info.key_id, key_prefix: created.info.prefix, scopes });
    return created;
  }

  listKeys(options: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    return listApiKeys(this.db, options);
  }

  async revokeKey(nameOrId: string, actor: string): Promise<ApiKeyInfo> {
    const info = await revokeApiKey(this.db, nameOrId, actor);
    await this.afterChange('keys');
    auditLog(this.logger, 'api_key.revoked', actor, { key_name: info.name, key_id: info.key_id, key_prefix: info.prefix });
    return info;
  }

  async showLimits(): Promise<EffectiveLimit[]> {
    return effectiveLimits(limitDefaults(this.config), await readLimitRows(this.db));
  }

  /** Sets limits (`{name: value}`); all are checked before any is stored. */
  async setLimits(values: Record<string, unknown>, actor: string): Promise<EffectiveLimit[]> {
    const types = this.jobTypes();
    const entries = Object.entries(values).map(([name, value]) => ({ name, value: checkLimitValue(name, value, types) }));
    if (entries.length === 0) throw validation('give at least one limit as name=value');
    const before = new Map((await this.showLimits()).map((l) => [l.name, l.value]));
    await upsertLimits(this.db, entries, actor);
    await this.afterChange('limits');
    auditLog(this.logger, 'limits.changed', actor, { changes: entries.map((e) => ({ name: e.name, from: before.get(e.name) ?? null, to: e.value })) });
    return this.showLimits();
  }

  /** Removes runtime values so the configured defaults apply again. */
  async resetLimits(names: readonly string[], actor: string): Promise<EffectiveLimit[]> {
    for (const name of names) limitDefinition(name);
    if (names.length === 0) throw validation('give at least one limit name to reset');
    const removed = await deleteLimits(this.db, names);
    await this.afterChange('limits');
    if (removed.length) auditLog(this.logger, 'limits.reset', actor, { names: removed });
    return this.showLimits();
  }
}
