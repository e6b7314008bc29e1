import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { validation } from '../errors.ts';
import { checkInput, invalidUtf8 } from '../input-checks.ts';

export { checkInput, MAX_JSON_DEPTH } from '../input-checks.ts';

/**
 * The HTTP side of the input guard (the rules are in src/input-checks.ts): JSON bodies must be UTF-8
 * before they are parsed, query strings must be percent-encoded UTF-8 with one value per name, and
 * params, query and body pass `checkInput`. Dataset uploads stream past Fastify's parsers: the
 * dataset service applies the same rules to their bytes and rows.
 */

/** Checks a request's params, query string and parsed JSON body; throws the 4xx to answer. */
export function guardRequest(request: FastifyRequest): void {
  checkInput('params', request.params);
  const queryAt = request.url.indexOf('?');
  if (queryAt !== -1) checkRawQuery(request.url.slice(queryAt + 1));
  checkQueryShape(request.query);
  checkInput('querystring', request.query);
  const body = request.body;
  if (body !== undefined && body !== null && typeof (body as { pipe?: unknown }).pipe !== 'function') checkInput('body', body);
}

/**
 * Every name and value must decode to UTF-8. Fastify's parser passes an undecodable `%FF` on as the
 * three characters `%FF`, and raw bytes above 0x7F as Latin-1 characters: either way the route would
 * see something other than what was sent.
 */
function checkRawQuery(raw: string): void {
  if (/[^\x21-\x7e]/.test(raw)) {
    const bad = /[^\x21-\x7e]/.exec(raw)!;
    throw validation(`querystring: contains the raw character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}; percent-encode it (as UTF-8)`, { field: 'querystring' });
  }
  for (const pair of raw.split('&')) {
    const eq = pair.indexOf('=');
    const [name, value] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    const decodedName = decode(name);
    const field = `querystring.${decodedName ?? name.slice(0, 100)}`;
    if (decodedName === null || decode(value) === null) throw invalidUtf8(field, 'not valid percent-encoded UTF-8');
  }
}

function decode(text: string): string | null {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** One value per name: `status[]=x` and `status=a&status=b` were silently ignored or misread. */
function checkQueryShape(query: unknown): void {
  if (query === null || typeof query !== 'object') return;
  for (const [name, value] of Object.entries(query)) {
    if (/[[\]]/.test(name)) {
      const base = name.slice(0, name.indexOf('[')) || name;
      throw validation(`querystring.${name.slice(0, 100)}: array-shaped parameters are not accepted; give one value, e.g. ${base}=a (several values: ${base}=a,b where the parameter takes a list)`, { field: `querystring.${name.slice(0, 100)}` });
    }
    if (Array.isArray(value)) {
      throw validation(`querystring.${name.slice(0, 100)}: given ${value.length} times; give it once (several values: one comma-separated value where the parameter takes a list)`, { field: `querystring.${name.slice(0, 100)}` });
    }
  }
}

/**
 * Replaces Fastify's JSON body parser with one that refuses bytes that are not UTF-8 before parsing:
 * the default decoder turns them into U+FFFD, and that is what would be stored.
 */
export function registerUtf8JsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(invalidUtf8('body', 'an invalid byte sequence'), undefined);
      return;
    }
    const text = bytes.toString('utf8');
    parseJson(request, text, (error, value) => {
      if (error) done(explainRefusedJson(text) ?? error, undefined);
      else done(null, value);
    });
  });
}

/**
 * Fastify's parser refuses `__proto__` keys and `constructor` keys holding `prototype` (they could
 * change the prototype of the objects built from the body) with the same "not valid JSON" as a
 * syntax error, which is untrue and names nothing: a JSON Schema with such a property name was
 * refused without saying where. Parsed again with JSON.parse (which makes such keys plain own
 * properties), the body tells which key was refused, and where; null when it is not JSON at all.
 */
function explainRefusedJson(text: string): Error | null {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return null;
  }
  // Iterative: the body may be nested deeper than the stack allows recursion (the depth guard runs later).
  const stack: Array<{ value: unknown; path: string }> = [{ value: root, path: 'body' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value)) {
      const at = `${path}.${key}`.slice(0, 300);
      const hasPrototype = key === 'constructor' && child !== null && typeof child === 'object' && Object.prototype.hasOwnProperty.call(child, 'prototype');
      if (key === '__proto__' || hasPrototype) {
        const what = key === '__proto__' ? 'the key "__proto__"' : 'a "constructor" key holding "prototype"';
        return validation(`${at}: ${what} is not accepted (it could alter the prototypes of the objects built from the body); rename it`, { field: at });
      }
      stack.push({ value: child, path: at });
    }
  }
  return null;
}
