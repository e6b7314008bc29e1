import os from 'node:os';
import { pino } from 'pino';
import type { Config } from '../config/config.ts';
import { AppError } from '../errors.ts';
import { createLogger } from '../obs/logger.ts';
import { EVALUATION_JOB_TYPE } from '../evals/evaluation-service.ts';
import { BUILTIN_HANDLERS } from '../jobs/handlers/builtin-handlers.ts';
import { AccessAdmin } from '../ops/access-admin.ts';
import type { ApiKeyInfo } from '../ops/api-key-service.ts';
import type { EffectiveLimit } from '../ops/runtime-limits.ts';
import { type DatabaseAccess, openDatabaseAccess } from './database-access.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** Key and limit management from the CLI, wherever the database is. */
export interface AccessOperations {
  readonly via: 'direct' | 'server';
  createKey(name: string, scopes: string[]): Promise<{ key: string; info: ApiKeyInfo }>;
  listKeys(includeRevoked: boolean): Promise<ApiKeyInfo[]>;
  revokeKey(nameOrId: string): Promise<ApiKeyInfo>;
  showLimits(): Promise<EffectiveLimit[]>;
  setLimits(values: Record<string, string>): Promise<EffectiveLimit[]>;
  resetLimits(names: string[]): Promise<EffectiveLimit[]>;
}

/** `cli:<os user>`: who the audit lines name for a CLI action. */
export function cliActor(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `cli:${user.replace(/[^\w.@-]/g, '_').slice(0, 64) || 'unknown'}`;
}

const table = (table: string) => new RegExp(`relation "${table}" does not exist`);

/** Turns a service error into the CLI's sentence and exit code. */
function asCliError(err: unknown): never {
  if (err instanceof CliError) throw err;
  if (err instanceof AppError) throw new CliError(err.message, EXIT.FAILURE);
  const message = (err as Error).message ?? String(err);
  if (table('api_keys').test(message) || table('runtime_limits').test(message)) {
    throw new CliError('this database has no access-control tables yet: run `npx evalops migrate up` first', EXIT.MIGRATIONS_PENDING);
  }
  throw new CliError(message, EXIT.FAILURE);
}

/**
 * Runs `body` with access operations: on the database directly (PostgreSQL, or an embedded database
 * no server holds), or through the server that holds the embedded one (its /local routes).
 * Directly, the audit lines go to this command's stderr; through the server, to the server's log.
 */
export async function withAccessOperations<T>(config: Config, body: (ops: AccessOperations) => Promise<T>): Promise<T> {
  const access = await openDatabaseAccess(config);
  try {
    return await body(operations(access, config)).catch(asCliError);
  } finally {
    await access.close();
  }
}

function operations(access: DatabaseAccess, config: Config): AccessOperations {
  const actor = cliActor();
  if (access.db) {
    // Audit lines are always written, whatever LOG_LEVEL says for the rest of the command.
    // Without a server, the job types are those evalops itself runs (a server's extension types are set through it).
    const jobTypes = [...BUILTIN_HANDLERS.map((h) => h.type), EVALUATION_JOB_TYPE].sort();
    const admin = new AccessAdmin(access.db, config, createLogger({ level: 'info', destination: pino.destination({ dest: 2, sync: true }) }), () => jobTypes);
    return {
      via: 'direct',
      createKey: (name, scopes) => admin.createKey({ name, scopes }, actor),
      listKeys: (includeRevoked) => admin.listKeys({ includeRevoked }),
      revokeKey: (nameOrId) => admin.revokeKey(nameOrId, actor),
      showLimits: () => admin.showLimits(),
      setLimits: (values) => admin.setLimits(values, actor),
      resetLimits: (names) => admin.resetLimits(names, actor),
    };
  }
  const call = access.callLocal!;
  const who = { 'x-evalops-actor': actor };
  return {
    via: 'server',
    async createKey(name, scopes) {
      const { key, ...info } = await call<ApiKeyInfo & { key: string }>('POST', '/local/api-keys', { name, scopes }, who);
      return { key, info };
    },
    listKeys: async (includeRevoked) => (await call<{ keys: ApiKeyInfo[] }>('GET', `/local/api-keys?include_revoked=${includeRevoked}`)).keys,
    revokeKey: (nameOrId) => call<ApiKeyInfo>('POST', `/local/api-keys/${encodeURIComponent(nameOrId)}/revoke`, undefined, who),
    showLimits: async () => (await call<{ limits: EffectiveLimit[] }>('GET', '/local/limits')).limits,
    setLimits: async (values) => (await call<{ limits: EffectiveLimit[] }>('PUT', '/local/limits', values, who)).limits,
    async resetLimits(names) {
      let limits: EffectiveLimit[] = [];
      for (const name of names) limits = (await call<{ limits: EffectiveLimit[] }>('DELETE', `/local/limits/${encodeURIComponent(name)}`, undefined, who)).limits;
      return limits;
    },
  };
}
