import { readFileSync } from 'node:fs';

/** The evalops version from package.json (two levels up from both src/config and dist/config). */
export const EVALOPS_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
