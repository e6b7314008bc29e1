import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, lazyChildLogger } from '../../../src/obs/logger.ts';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

const withoutTime = (line: Record<string, unknown> | undefined) => ({ ...line, time: undefined });

describe('lazyChildLogger', () => {
  it('writes the same lines as a pino child with the same bindings, secrets redacted', () => {
    const { logger, lines } = capture('info');
    const lazy = lazyChildLogger(logger, { request_id: 'r-1' });
    const real = logger.child({ request_id: 'r-1' });
    for (const log of [lazy, real]) {
      log.info({ path: '/v1/jobs', token: 'secret' }, 'request failed');
      log.error(new Error('boom'));
      log.warn('plain %s', 'text');
    }
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 3; i++) expect(withoutTime({ ...lines[i], err: undefined })).toEqual(withoutTime({ ...lines[i + 3], err: undefined }));
    expect(lines[0]).toMatchObject({ request_id: 'r-1', path: '/v1/jobs', token: '[redacted]', msg: 'request failed', level: 'info' });
    expect((lines[1]!.err as { message: string }).message).toBe('boom');
  });

  it('makes no child for lines below the level, and follows the parent level until it writes', () => {
    const { logger, lines } = capture('info');
    let children = 0;
    const child = logger.child;
    logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
      children++;
      return child.apply(this, args);
    } as typeof logger.child;

    const lazy = lazyChildLogger(logger, { request_id: 'r-2' });
    lazy.debug({ x: 1 }, 'not written');
    expect(lazy.isLevelEnabled('debug')).toBe(false);
    expect(lazy.level).toBe('info');
    expect(children).toBe(0);
    logger.level = 'debug';
    lazy.debug({ x: 2 }, 'written');
    expect(children).toBe(1);
    expect(lines[0]).toMatchObject({ request_id: 'r-2', x: 2, msg: 'written', level: 'debug' });
    lazy.child({ job_id: 'j' }).info('from a grandchild');
    expect(lines[1]).toMatchObject({ request_id: 'r-2', job_id: 'j', msg: 'from a grandchild' });
  });

  it('makes the child at once when the route sets its own level', () => {
    const { logger } = capture('info');
    const log = lazyChildLogger(logger, { request_id: 'r-3' }, { level: 'debug' });
    expect(log.level).toBe('debug');
    expect((log as unknown as { bindings(): object }).bindings()).toEqual({ request_id: 'r-3' });
  });
});
