/**
 * Canonical JSON: object keys sorted recursively (by UTF-16 code units, as `Array.prototype.sort`
 * does), no whitespace, numbers and strings as `JSON.stringify` writes them. For JSON-parsed input
 * this is RFC 8785 (JCS) in practice. Content hashes (dataset snapshot ids, response cache keys)
 * are taken over this form so that key order and formatting never change an id.
 */

/** Serialises `value` canonically; throws on values JSON cannot represent faithfully. */
export function canonicalJson(value: unknown): string {
  const out = write(value, '$');
  if (out === undefined) throw new TypeError('canonicalJson: the top-level value is undefined');
  return out;
}

function write(value: unknown, path: string): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // NaN and Infinity would silently become null in JSON.stringify: two different inputs, one hash.
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is not a finite number`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError(`canonicalJson: ${path} is a bigint, which JSON cannot represent`);
    default:
      break;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const parts = value.map((item, i) => write(item, `${path}[${i}]`) ?? 'null');
    return `[${parts.join(',')}]`;
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const item = write(record[key], `${path}.${key}`);
    if (item !== undefined) parts.push(`${JSON.stringify(key)}:${item}`);
  }
  return `{${parts.join(',')}}`;
}
