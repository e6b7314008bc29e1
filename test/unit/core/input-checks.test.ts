import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/evals/canonical-json.ts';
import { checkInput, numberProblem, Utf8Validator } from '../../../src/input-checks.ts';

describe('numbers JSON cannot round-trip', () => {
  it('refuses non-finite numbers, -0 and integers beyond 2^53 - 1, and accepts the rest', () => {
    expect(numberProblem(Number.POSITIVE_INFINITY)).toMatch(/not a finite number/);
    expect(numberProblem(-0)).toMatch(/-0/);
    expect(numberProblem(2 ** 53)).toMatch(/integer beyond/);
    expect(numberProblem(-(2 ** 53))).toMatch(/integer beyond/);
    // Every double of magnitude 2^53 or more is an integer: all of them are refused.
    expect(numberProblem(1.5e300)).toMatch(/integer beyond/);
    for (const ok of [0, 1, -1, 0.1, 1.5e-300, 5e-324, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) expect(numberProblem(ok), String(ok)).toBeNull();
    expect(() => checkInput('body', { a: [1, { b: JSON.parse('1e400') }] })).toThrow(/^body\.a\.1\.b: is not a finite number/);
    expect(() => checkInput('body', JSON.parse('-0'))).toThrow(/^body: -0/);
  });
});

describe('canonical JSON', () => {
  it('writes a value nested 100,000 levels deep without overflowing the stack (it threw RangeError)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i += 1) deep = i % 2 ? { b: deep, a: [] } : [deep];
    const text = canonicalJson(deep);
    expect(text.startsWith('{"a":[],"b":[{"a":[],"b":[')).toBe(true);
    expect(text.length).toBeGreaterThan(600_000);
  });

  it('keeps the JSON.stringify forms: sorted keys, undefined left out of objects and null in arrays', () => {
    expect(canonicalJson({ b: 1, a: [1, undefined, { d: undefined, c: null }], e: new Date(0) })).toBe('{"a":[1,null,{"c":null}],"b":1,"e":"1970-01-01T00:00:00.000Z"}');
    expect(() => canonicalJson({ a: [1, { b: Number.NaN }] })).toThrow('canonicalJson: $.a[1].b is not a finite number');
  });
});

describe('streaming UTF-8 check', () => {
  const text = Buffer.from('aé€😀z');

  it('accepts a character split at every possible chunk boundary', () => {
    for (let cut = 0; cut <= text.length; cut += 1) {
      for (let cut2 = cut; cut2 <= text.length; cut2 += 1) {
        const v = new Utf8Validator();
        v.push(text.subarray(0, cut));
        v.push(text.subarray(cut, cut2));
        v.push(text.subarray(cut2));
        expect(() => v.end(), `${cut} ${cut2}`).not.toThrow();
      }
    }
  });

  it('refuses invalid bytes, overlong forms, encoded surrogates and a character cut off at the end', () => {
    for (const bad of [[0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const v = new Utf8Validator();
      expect(() => {
        v.push(Buffer.from('ok'));
        v.push(Buffer.from(bad));
        v.push(Buffer.from('more'));
        v.end();
      }, bad.join(' ')).toThrow(/body: not valid UTF-8/);
    }
    const cut = new Utf8Validator();
    cut.push(text.subarray(0, text.length - 2));
    expect(() => cut.end()).toThrow(/incomplete character/);
  });
});
