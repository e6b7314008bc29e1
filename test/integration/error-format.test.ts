import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * Every answer is in the documented error format, `{"error": {"code", "message", ...}}` with the
 * code's own HTTP status, including those of Node's HTTP parser and of Fastify's internals: sent raw
 * on the socket where a client would normalise or refuse the request.
 */

let db: TestDatabase;
let server: TestServer;
let port: number;

const BODY_LIMIT = 4096;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { BODY_LIMIT_BYTES: String(BODY_LIMIT) });
  port = Number(new URL(server.url).port);
});

afterAll(async () => {
  await server?.close(2000);
  await db?.cleanup();
});

interface RawAnswer {
  status: number;
  headers: string;
  body: any;
}

/** Writes `request` as is and reads the first answer until the server closes or sends it whole. */
function raw(request: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 10 s'));
    }, 10_000);
    const finish = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
      const bodyText = rest.join('\r\n\r\n');
      let body: unknown = bodyText;
      try {
        body = JSON.parse(Number.isFinite(length) ? Buffer.from(bodyText).subarray(0, length).toString() : bodyText);
      } catch {
        /* keep the text */
      }
      resolve({ status, headers: head, body });
    };
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, split))?.[1] ?? NaN);
      if (split >= 0 && Number.isFinite(length) && Buffer.byteLength(text) - Buffer.byteLength(text.slice(0, split + 4)) >= length) {
        socket.destroy();
        finish();
      }
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(request);
  });
}

/** The answer is in the documented format, its status the code's status in the catalogue. */
function expectDocumented(answer: { status: number; body: any }, code: keyof typeof ERROR_CODES, message?: RegExp): void {
  expect(answer.body, JSON.stringify(answer.body)).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(Object.keys(answer.body)).toEqual(['error']);
  expect(answer.status).toBe(ERROR_CODES[code].status);
  if (message) expect(answer.body.error.message).toMatch(message);
}

describe("answers of Node's HTTP parser", () => {
  it('headers over the limit: 431 HEADERS_TOO_LARGE saying the limit', async () => {
    const answer = await raw(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expectDocumented(answer, 'HEADERS_TOO_LARGE', new RegExp(`over the limit of ${http.maxHeaderSize} bytes`));
  });

  it('a URL over the limit: 431 HEADERS_TOO_LARGE', async () => {
    expectDocumented(await raw(`GET /v1/jobs?x=${'a'.repeat(90_000)} HTTP/1.1\r\nHost: x\r\n\r\n`), 'HEADERS_TOO_LARGE', /shorter URL/);
  });

  it('malformed HTTP: 400 VALIDATION naming the parser error', async () => {
    expectDocumented(await raw('GARBAGE\r\n\r\n'), 'VALIDATION', /^request: not valid HTTP\/1\.1 \(HPE_/);
    expectDocumented(await raw('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'), 'VALIDATION', /not valid HTTP/);
  });
});

describe("answers of Fastify's internals", () => {
  it('a static path that leaves its folder is a 404 NOT_FOUND, not a 403 VALIDATION', async () => {
    for (const path of ['/assets/../../etc/passwd', '/assets/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2fpackage.json']) {
      const answer = await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect([404, 400], path).toContain(answer.status);
      expectDocumented(answer, answer.status === 404 ? 'NOT_FOUND' : 'VALIDATION');
    }
  });

  it('text/plain and other unparsed types are a 415 naming the type', async () => {
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml']) {
      const res = await server.api('POST', '/v1/jobs', '{"type":"noop"}', { 'content-type': type });
      expectDocumented(res, 'UNSUPPORTED_MEDIA_TYPE', new RegExp(`^body: content type "${type.split(';')[0]!.replace('/', '\\/')}" is not supported; send application/json$`));
    }
  });

  it('a chunked body over the limit is a 413 with the number of bytes', async () => {
    const payload = JSON.stringify({ type: 'noop', payload: { a: 'x'.repeat(BODY_LIMIT * 2) } });
    const chunked = `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${payload.length.toString(16)}\r\n${payload}\r\n0\r\n\r\n`;
    const answer = await raw(chunked);
    expectDocumented(answer, 'PAYLOAD_TOO_LARGE', new RegExp(`limit of ${BODY_LIMIT} bytes`));
    expect(answer.body.error.message).not.toContain('limit of BODY_LIMIT_BYTES');
  });

  it('bad JSON, an unknown route, an unknown method: each in the format with its code', async () => {
    expectDocumented(await server.api('POST', '/v1/jobs', '{"type":'), 'VALIDATION', /^body: not valid JSON/);
    expectDocumented(await server.api('GET', '/v1/nothing-here'), 'NOT_FOUND', /no route for GET \/v1\/nothing-here/);
    expectDocumented(await server.api('PATCH', '/v1/jobs'), 'NOT_FOUND');
    expectDocumented(await server.api('GET', '/v1/jobs/not-a-uuid'), 'VALIDATION');
  });
});

describe('answers while the server closes', () => {
  it('a request arriving on a kept-alive connection during shutdown is a 503 UNAVAILABLE with an error_id', async () => {
    const own = await createTestDatabase();
    const closing = await startTestServer(own);
    const socket = net.connect(Number(new URL(closing.url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const received: Buffer[] = [];
    socket.on('data', (c) => received.push(c));
    socket.on('error', () => undefined);
    // A request whose body is still on its way keeps the connection busy while the close starts.
    socket.write('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"type":');
    await new Promise((r) => setTimeout(r, 200));
    const closed = closing.close(3000);
    await new Promise((r) => setTimeout(r, 200));
    socket.write('"noop"}');
    socket.write('GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    await new Promise((resolve) => (socket.destroyed ? resolve(undefined) : socket.once('close', resolve)));
    const answers = Buffer.concat(received).toString('utf8').split(/(?=HTTP\/1\.1 )/).filter(Boolean);
    // Every answer on the connection is in the format; the second, if it was read, is the 503.
    console.log(`answers on the connection while closing: ${answers.map((a) => a.split('\r\n')[0]).join(', ')}`);
    for (const text of answers) {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
      if (status >= 400) expect(Object.keys(body.error)).toEqual(expect.arrayContaining(['code', 'message']));
      if (status === 503) expect(body.error).toMatchObject({ code: 'UNAVAILABLE', error_id: expect.any(String) });
    }
    expect(answers.length).toBeGreaterThanOrEqual(1);
    await own.cleanup();
  });
});
