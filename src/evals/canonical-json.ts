/**
 * Canonical JSON: object keys sorted recursively (by UTF-16 code units, as `Array.prototype.sort`
 * does), no whitespace, numbers and strings as `JSON.stringify` writes them. For JSON-parsed input
 * this is RFC 8785 (JCS) in practice. Content hashes (dataset snapshot ids, response cache keys)
 * are taken over this form so that key order and formatting never change an id.
 */

/** An array or object being written: its entries, the next one to write, what closes it. */
interface Frame {
  entries: Array<[string | null, unknown]>;
  next: number;
  wrote: boolean;
  close: string;
  path: string;
}

/**
 * Serialises `value` canonically; throws on values JSON cannot represent faithfully. Written with an
 * explicit stack rather than recursion, so no nesting depth can overflow the call stack (a
 * 100,000-level value is written, not a RangeError).
 */
export function canonicalJson(value: unknown): string {
  const top = begin(value, '$');
  if (top === undefined) throw new TypeError('canonicalJson: the top-level value is undefined');
  if (typeof top === 'string') return top;
  const out: string[] = [top.close === ']' ? '[' : '{'];
  const stack: Frame[] = [top];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    if (frame.next >= frame.entries.length) {
      out.push(frame.close);
      stack.pop();
      continue;
    }
    const [key, item] = frame.entries[frame.next] as [string | null, unknown];
    frame.next += 1;
    const path = key === null ? `${frame.path}[${frame.next - 1}]` : `${frame.path}.${key}`;
    const written = begin(item, path) ?? (key === null ? 'null' : undefined);
    // Object members whose value JSON cannot hold (undefined, functions) are left out, as JSON.stringify does.
    if (written === undefined) continue;
    if (frame.wrote) out.push(',');
    frame.wrote = true;
    if (key !== null) out.push(`${JSON.stringify(key)}:`);
    if (typeof written === 'string') {
      out.push(written);
    } else {
      out.push(written.close === ']' ? '[' : '{');
      stack.push(written);
    }
  }
  return out.join('');
}

/** A scalar's text, a frame for an array or object, or undefined for what JSON leaves out. */
function begin(value: unknown, path: string): string | Frame | undefined {
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
  if (Array.isArray(value)) return { entries: value.map((item) => [null, item]), next: 0, wrote: false, close: ']', path };
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const record = value as Record<string, unknown>;
  const entries: Array<[string, unknown]> = Object.keys(record)
    .sort()
    .map((key) => [key, record[key]]);
  return { entries, next: 0, wrote: false, close: '}', path };
}
