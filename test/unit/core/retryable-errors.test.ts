import { describe, expect, it } from 'vitest';
import { AppError, isRetryable, PERMANENT_SYSTEM_ERRORS } from '../../../src/errors.ts';

const systemError = (code: string) => Object.assign(new Error(`${code}: simulated`), { code, errno: -1, syscall: 'mkdir' });

describe('isRetryable', () => {
  it('follows the catalogue for AppErrors', () => {
    expect(isRetryable(new AppError('VALIDATION', 'x'))).toBe(false);
    expect(isRetryable(new AppError('CONFLICT', 'x'))).toBe(false);
    expect(isRetryable(new AppError('UNAVAILABLE', 'x'))).toBe(true);
    expect(isRetryable(new AppError('RATE_LIMITED', 'x'))).toBe(true);
  });

  it('refuses to retry what the host refuses until an operator acts, and retries levels that move on their own', () => {
    for (const code of ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP']) {
      expect(code in PERMANENT_SYSTEM_ERRORS, code).toBe(true);
      expect(isRetryable(systemError(code)), code).toBe(false);
    }
    for (const code of ['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED']) expect(isRetryable(systemError(code)), code).toBe(true);
    expect(isRetryable(new Error('no code'))).toBe(true);
  });

  it('looks at the cause of a wrapped error', () => {
    expect(isRetryable(new Error('writing results failed', { cause: systemError('EROFS') }))).toBe(false);
    expect(isRetryable(new Error('writing results failed', { cause: systemError('ENOSPC') }))).toBe(true);
  });
});
