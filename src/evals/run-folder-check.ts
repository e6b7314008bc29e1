import { createReadStream, existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { splitLines } from './dataset-parser.ts';
import { hashFile, METADATA_FILE, RESULTS_FILE, RUN_FILES, SUMMARY_FILE } from './run-artifacts.ts';
import { RUN_METADATA_REQUIRED_KEYS, validateRunMetadata } from './run-metadata.ts';

/**
 * Checks a run folder the way the runbook's section C asks (C.1 result files present, C.2
 * run_metadata valid, with the missing or invalid keys named), without a database: it works on a
 * copied folder, a CI artifact, or the folder of a failed run.
 */

export interface RunFolderCheck {
  ok: boolean;
  dir: string;
  /** One sentence per problem, each naming the file and what is wrong. */
  problems: string[];
  files: Array<{ name: string; present: boolean; bytes: number | null }>;
  /** Leftovers of an interrupted run (`results.jsonl.partial`). */
  partialFiles: string[];
  cases: number | null;
  metadata: Record<string, unknown> | null;
}

async function readJson(file: string, problems: string[]): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    problems.push(`${path.basename(file)}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
}

/** Checks `dir`: the three files, run_metadata against the schema, results.jsonl against summary and metadata. */
export async function checkRunFolder(dir: string): Promise<RunFolderCheck> {
  const problems: string[] = [];
  const absolute = path.resolve(dir);
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    return { ok: false, dir: absolute, problems: [`${absolute} is not a directory`], files: [], partialFiles: [], cases: null, metadata: null };
  }
  const files = RUN_FILES.map((name) => {
    const file = path.join(absolute, name);
    const present = existsSync(file) && statSync(file).isFile();
    if (!present) problems.push(`missing result file: ${name}`);
    return { name, present, bytes: present ? statSync(file).size : null };
  });
  const partialFiles = (await readdir(absolute)).filter((n) => n.endsWith('.partial') || n.includes('.tmp-')).sort();
  const present = (name: string) => files.find((f) => f.name === name)?.present === true;

  let metadata: Record<string, unknown> | null = null;
  if (present(METADATA_FILE)) {
    const value = await readJson(path.join(absolute, METADATA_FILE), problems);
    if (value !== undefined) {
      const result = validateRunMetadata(value);
      if (!result.ok) for (const e of result.errors) problems.push(`${METADATA_FILE}: ${e}`);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) metadata = value as Record<string, unknown>;
    }
  } else {
    problems.push(`${METADATA_FILE}: cannot check the required keys (${RUN_METADATA_REQUIRED_KEYS.join(', ')}) without the file`);
  }

  let summaryCases: number | null = null;
  if (present(SUMMARY_FILE)) {
    const summary = (await readJson(path.join(absolute, SUMMARY_FILE), problems)) as { cases?: unknown } | undefined;
    if (summary !== undefined) {
      if (typeof summary?.cases === 'number') summaryCases = summary.cases;
      else problems.push(`${SUMMARY_FILE}: has no "cases" count`);
    }
  }

  let cases: number | null = null;
  if (present(RESULTS_FILE)) {
    cases = 0;
    let bad = 0;
    for await (const item of splitLines(createReadStream(path.join(absolute, RESULTS_FILE)))) {
      if ('tooLong' in item) {
        bad += 1;
        continue;
      }
      if (item.text === '') continue;
      cases += 1;
      try {
        const row = JSON.parse(item.text) as { id?: unknown };
        if (typeof row.id !== 'string') throw new Error('no id');
      } catch {
        if (bad++ < 3) problems.push(`${RESULTS_FILE}: line ${item.line} is not a result (a JSON object with an id)`);
      }
    }
    if (bad > 3) problems.push(`${RESULTS_FILE}: ${bad - 3} more invalid lines`);
    if (summaryCases !== null && summaryCases !== cases) problems.push(`${RESULTS_FILE} has ${cases} cases but ${SUMMARY_FILE} counts ${summaryCases}: the files are from different runs or incomplete`);
    const recorded = metadata?.results_sha256;
    if (typeof recorded === 'string') {
      const actual = (await hashFile(path.join(absolute, RESULTS_FILE))).sha256;
      if (actual !== recorded) problems.push(`${RESULTS_FILE} hashes to ${actual}, not the results_sha256 in ${METADATA_FILE} (${recorded}): it changed after the run`);
    }
  }
  return { ok: problems.length === 0, dir: absolute, problems, files, partialFiles, cases, metadata };
}
