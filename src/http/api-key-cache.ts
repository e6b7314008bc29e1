import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../obs/logger.ts';
import { type AuthenticatedKey, countActiveKeys, findKeyByHash, hashApiKey, looksLikeApiKey, touchApiKey } from '../ops/api-key-service.ts';

/** The outcome of checking a bearer token. */
export type KeyCheck = { ok: true; key: AuthenticatedKey } | { ok: false; reason: 'unknown' | 'revoked' };

const UNKNOWN: KeyCheck = { ok: false, reason: 'unknown' };
/** Bound on cached verdicts: a flood of distinct tokens must not grow memory without end. */
const MAX_ENTRIES = 10_000;

/**
 * Per-process view of the api_keys table, so a request does not cost a query.
 *
 * Invalidation: a trigger on api_keys sends `NOTIFY evalops_api_keys` on every insert, revocation
 * or deletion; each process LISTENs (DatabaseHandle.listen, on PostgreSQL and PGlite alike) and
 * drops its whole cache when one arrives, so a revocation counts from the next request once the
 * notification is delivered (milliseconds). Should a notification be lost (the LISTEN connection
 * was down), no verdict is trusted for longer than AUTH_CACHE_TTL_MS: that is the worst case.
 */
export class ApiKeyCache {
  #entries = new Map<string, { check: KeyCheck; expires: number }>();
  /** Bumped by every notification: a lookup that started before it must not be cached after it. */
  #generation = 0;
  #activeKeys = 0;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(
    private readonly database: DatabaseHandle,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  static async start(options: { database: DatabaseHandle; ttlMs: number; logger: Logger }): Promise<ApiKeyCache> {
    const cache = new ApiKeyCache(options.database, options.ttlMs, options.logger);
    cache.#activeKeys = await countActiveKeys(options.database.db);
    cache.#unlisten = await options.database.listen('evalops_api_keys', () => void cache.invalidate());
    // The count decides whether a loopback server runs open; keep it fresh even without notifications.
    cache.#timer = setInterval(() => void cache.#refreshCount(), Math.max(options.ttlMs, 1000));
    cache.#timer.unref();
    return cache;
  }

  /** Keys not revoked, as of the last notification or refresh. */
  activeKeys(): number {
    return this.#activeKeys;
  }

  /** Forgets every cached verdict (on NOTIFY, or after a change made by this process); resolves once the count is fresh. */
  invalidate(): Promise<void> {
    this.#generation += 1;
    this.#entries.clear();
    return this.#refreshCount();
  }

  async #refreshCount(): Promise<void> {
    try {
      this.#activeKeys = await countActiveKeys(this.database.db);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not count API keys; keeping the previous count');
    }
  }

  /** Checks a bearer token: from the cache when fresh, else with one indexed query. */
  check(token: string): KeyCheck | Promise<KeyCheck> {
    // Not our shape: refused without a query, so random tokens cost nothing.
    if (!looksLikeApiKey(token)) return UNKNOWN;
    const hash = hashApiKey(token);
    const cached = this.#entries.get(hash);
    if (cached && cached.expires > Date.now()) return cached.check;
    return this.#lookup(hash);
  }

  async #lookup(hash: string): Promise<KeyCheck> {
    const generation = this.#generation;
    const row = await findKeyByHash(this.database.db, hash);
    const check: KeyCheck = !row ? UNKNOWN : row.revokedAt ? { ok: false, reason: 'revoked' } : { ok: true, key: { keyId: row.keyId, name: row.name, scopes: row.scopes } };
    if (this.ttlMs > 0 && generation === this.#generation) {
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(hash, { check, expires: Date.now() + this.ttlMs });
    }
    if (check.ok) {
      // A valid key proves keys exist, even if the count has not caught up with the notification yet.
      if (this.#activeKeys === 0) this.#activeKeys = 1;
      touchApiKey(this.database.db, check.key.keyId).catch((err: Error) => this.logger.debug({ err: err.message }, 'could not record API key use'));
    }
    return check;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#unlisten?.().catch(() => {});
  }
}
