import { describe, expect, it } from 'vitest';
import { postgresWaits } from '../../../src/db/postgres-pool.ts';
import { isUnavailableError } from '../../../src/errors.ts';

describe('postgresWaits', () => {
  it.each([200, 1000, 2000, 60_000])('keeps every wait within DB_UNAVAILABLE_ANSWER_MS=%i, the server cancelling before the client stops reading', (answerMs) => {
    const w = postgresWaits(answerMs);
    expect(w.connectMs).toBeLessThan(answerMs);
    expect(w.queryMs).toBeLessThan(answerMs);
    expect(w.statementMs).toBeLessThan(w.queryMs);
    expect(w.statementMs).toBeGreaterThan(0);
    expect(w.idleInTransactionMs).toBeGreaterThanOrEqual(5000);
  });
});

describe('isUnavailableError', () => {
  it('takes driver timeouts, lost connections and cancelled statements for an unavailable dependency', () => {
    expect(isUnavailableError({ message: 'the database did not answer within 750 ms (query_timeout)', code: 'ETIMEDOUT' })).toBe(true);
    expect(isUnavailableError({ message: 'timeout exceeded when trying to connect' })).toBe(true);
    expect(isUnavailableError({ message: 'canceling statement due to statement timeout', code: '57014' })).toBe(true);
    expect(isUnavailableError({ message: 'Command timed out' })).toBe(true);
    expect(isUnavailableError({ message: 'Client has encountered a connection error and is not queryable' })).toBe(true);
    expect(isUnavailableError({ message: 'connect ECONNREFUSED 127.0.0.1:5432', code: 'ECONNREFUSED' })).toBe(true);
  });

  it('leaves other failures to be internal errors', () => {
    expect(isUnavailableError({ message: 'relation "jobs" does not exist', code: '42P01' })).toBe(false);
    expect(isUnavailableError({ message: 'Cannot read properties of undefined' })).toBe(false);
  });
});
