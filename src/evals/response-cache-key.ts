import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import type { ChatMessage } from './prompt-template.ts';

/**
 * The key of a recorded provider response. Everything that can change the answer is an input
 * (provider type, endpoint, model, rendered messages, params, seed); nothing secret is (the API key
 * is not, and credentials in the URL are stripped), so keys can be shown and compared freely.
 * Hashing canonical JSON makes the key independent of key order in params.
 */

export interface ResponseCacheKeyInput {
  provider: string;
  /** Null for providers without an endpoint (echo). */
  baseUrl: string | null;
  model: string;
  messages: readonly ChatMessage[];
  params: Record<string, unknown>;
  seed: number;
}

/** Bumped if the key's composition ever changes, so old records are never confused with new ones. */
const KEY_VERSION = 1;

/** Hex SHA-256 of the canonical JSON of the request identity. */
export function responseCacheKey(input: ResponseCacheKeyInput): string {
  const identity = {
    v: KEY_VERSION,
    provider: input.provider,
    base_url: input.baseUrl === null ? null : normaliseBaseUrl(input.baseUrl),
    model: input.model,
    messages: input.messages.map((m) => ({ role: m.role, content: m.content })),
    params: input.params,
    seed: input.seed,
  };
  return createHash('sha256').update(canonicalJson(identity), 'utf8').digest('hex');
}

/** `http://host/v1/` and `http://host/v1` are the same endpoint; credentials are never part of the key. */
function normaliseBaseUrl(url: string): string {
  return withoutCredentials(url).replace(/\/+$/, '');
}

/**
 * The endpoint's identity without credentials. Deliberately not the display redaction
 * (src/config/url-redaction.ts): a change there must not change the keys of recorded answers, or
 * replays of older runs would miss them.
 */
function withoutCredentials(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
  parsed.username = '';
  parsed.password = '';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/key|token|secret|password|sig/i.test(key)) parsed.searchParams.set(key, 'REDACTED');
  }
  return parsed.toString();
}
