import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { datasetFormatFromFilename } from '../evals/dataset-parser.ts';
import type { DatasetSnapshot } from '../evals/dataset-service.ts';
import type { PromptVersion } from '../evals/prompt-service.ts';
import { parsePromptFile } from '../evals/prompt-template.ts';
import type { EvalApi } from './eval-api.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** Prompt files and dataset files sent to the API, shared by `prompt push`, `dataset push` and `eval run`. */

/** Parses a prompt file (YAML or JSON; errors name the line) and stores it as the next version. */
export async function pushPromptFile(api: EvalApi, file: string): Promise<PromptVersion & { created: boolean }> {
  if (!existsSync(file)) throw new CliError(`prompt file ${file} does not exist`, EXIT.USAGE);
  let definition;
  try {
    definition = parsePromptFile(readFileSync(file, 'utf8'), file);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.FAILURE);
  }
  const res = await api.fetch('/v1/prompts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(definition) });
  return { ...((await res.json()) as PromptVersion), created: res.status === 201 };
}

const CONTENT_TYPES = { jsonl: 'application/x-ndjson', csv: 'text/csv' } as const;

/** Streams a JSONL or CSV file to the API; the snapshot id is the hash of its canonical rows. */
export async function pushDatasetFile(api: EvalApi, file: string, options: { name?: string | undefined; format?: 'jsonl' | 'csv' | undefined } = {}): Promise<DatasetSnapshot & { created: boolean }> {
  if (!existsSync(file) || !statSync(file).isFile()) throw new CliError(`dataset file ${file} does not exist`, EXIT.USAGE);
  const format = options.format ?? datasetFormatFromFilename(file);
  if (!format) throw new CliError(`${file}: cannot tell the format from the name; use a .jsonl or .csv file, or --format`, EXIT.USAGE);
  const query = new URLSearchParams({ name: options.name ?? path.basename(file) });
  const res = await api.fetch(`/v1/datasets?${query}`, {
    method: 'POST',
    headers: { 'content-type': CONTENT_TYPES[format] },
    body: Readable.toWeb(createReadStream(file)) as unknown as RequestInit['body'],
    duplex: 'half',
  });
  return { ...((await res.json()) as DatasetSnapshot), created: res.status === 201 };
}
