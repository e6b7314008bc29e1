/**
 * Writes docs/run-metadata.schema.json from RUN_METADATA_SCHEMA (the single source of truth).
 * Run: `npx tsx scripts/write-run-metadata-schema.ts`. A unit test fails when the file is stale.
 */
import { writeFileSync } from 'node:fs';
import { RUN_METADATA_SCHEMA } from '../src/evals/run-metadata.ts';

const target = new URL('../docs/run-metadata.schema.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(RUN_METADATA_SCHEMA, null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
