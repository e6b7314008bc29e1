import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../../src/config/config.ts';
import { ERROR_CODES } from '../../../src/errors.ts';

const read = (p: string) => readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8');

describe('documentation kept in step with the code', () => {
  it('docs/configuration.md lists every variable loadConfig reads, and no other', () => {
    const doc = read('docs/configuration.md');
    const documented = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it('docs/architecture.md lists every error code with its HTTP status', () => {
    const doc = read('docs/architecture.md');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
  });
});
