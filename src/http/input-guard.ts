import { AppError, validation } from '../errors.ts';

/**
 * Deepest nesting of objects and arrays accepted in a request. Deeper JSON is an attack, not data:
 * recursive code (JSON.stringify, PostgreSQL's jsonb) would overflow its stack on it.
 */
export const MAX_JSON_DEPTH = 64;

// PostgreSQL text and jsonb cannot hold NUL, and refuse unpaired UTF-16 surrogates: refuse them here
// with a sentence instead of failing at the INSERT.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(where: string, path: readonly (string | number)[]): string {
  return path.length ? `${where}.${path.map(String).join('.').slice(0, 200)}` : where;
}

function checkString(where: string, path: readonly (string | number)[], value: string): void {
  const bad = UNSTORABLE.exec(value);
  if (!bad) return;
  const what = bad[0] === '\u0000' ? 'a NUL character (\\u0000)' : 'an unpaired UTF-16 surrogate';
  throw validation(`${describe(where, path)}: contains ${what}, which cannot be stored`, { field: describe(where, path) });
}

/**
 * Walks a parsed body, query or params without recursion: refuses nesting deeper than
 * MAX_JSON_DEPTH and strings (values or keys) PostgreSQL cannot store.
 */
export function checkInput(where: string, root: unknown): void {
  if (root === null || root === undefined) return;
  if (typeof root === 'string') return checkString(where, [], root);
  if (typeof root !== 'object' || isEmpty(root)) return;
  const stack: Array<{ value: object; depth: number; path: (string | number)[] }> = [{ value: root, depth: 1, path: [] }];
  while (stack.length) {
    const { value, depth, path } = stack.pop()!;
    if (depth > MAX_JSON_DEPTH) {
      throw new AppError('PAYLOAD_TOO_LARGE', `${describe(where, path.slice(0, 8))}: nested at least ${depth} levels deep, over the limit of ${MAX_JSON_DEPTH}`, { limit: MAX_JSON_DEPTH });
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries) {
      if (typeof key === 'string') checkString(where, path, key);
      if (typeof child === 'string') checkString(where, [...path, key], child);
      else if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1, path: depth < 8 ? [...path, key] : path });
    }
  }
}

/** Most requests have no params or query: skip the walk (and its allocations) for them. */
function isEmpty(value: object): boolean {
  for (const _ in value) return false;
  return true;
}
