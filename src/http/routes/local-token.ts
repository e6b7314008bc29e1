import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';

/**
 * The access check of the CLI's `/local` routes: the bearer token the server wrote to
 * DATA_DIR/server.json (mode 0600, readable by the server's OS user only), compared in constant time.
 */
export function localTokenCheck(token: string): (request: FastifyRequest) => Promise<void> {
  const expected = Buffer.from(`Bearer ${token}`);
  return async (request) => {
    const given = Buffer.from(request.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError('UNAUTHORIZED', 'local routes need the token from DATA_DIR/server.json');
    }
  };
}
