import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { EvaluationRun } from '../../evals/evaluation-service.ts';
import { isSnapshotId } from '../../evals/dataset-snapshot.ts';
import { configFromEnv } from '../cli-config.ts';
import { type EvalApi, withEvalApi } from '../eval-api.ts';
import { pushDatasetFile, pushPromptFile } from '../eval-inputs.ts';
import { exitCodeFor, renderRunReport, waitForRun, writeJunitReport } from '../eval-report.ts';
import { CliError, EXIT } from '../exit-codes.ts';

/**
 * `evalops eval run`: an evaluation from the terminal or CI. Inputs come from `--config FILE`
 * (YAML or JSON; paths relative to it) and flags, flags winning. A prompt or dataset given as a
 * file is pushed first (an unchanged file reuses its version / snapshot id).
 */

export interface RunOptions {
  config?: string;
  prompt?: string;
  dataset?: string;
  provider?: string;
  baseUrl?: string;
  apiKeyEnv?: string;
  model?: string;
  param: string[];
  scorer: string[];
  seed?: string;
  mode?: string;
  sample?: string;
  concurrency?: string;
  threshold: string[];
  name?: string;
  junit?: string;
  remote?: string;
  progress: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function readStructured(file: string, what: string): unknown {
  if (!existsSync(file)) throw new CliError(`${what} ${file} does not exist`, EXIT.USAGE);
  const text = readFileSync(file, 'utf8');
  try {
    return file.toLowerCase().endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new CliError(`${file}: not valid ${file.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, EXIT.USAGE);
  }
}

function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`${flag} takes a whole number, got ${JSON.stringify(value)}`, EXIT.USAGE);
  return Number(value);
}

/** `--param k=v`: the value as JSON when it parses (0.2, true, [1]), else the string. */
function parseParam(text: string): [string, unknown] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new CliError(`--param takes key=value, got ${JSON.stringify(text)}`, EXIT.USAGE);
  const raw = text.slice(eq + 1);
  try {
    return [text.slice(0, eq), JSON.parse(raw)];
  } catch {
    return [text.slice(0, eq), raw];
  }
}

/** `--scorer exact`, `--scorer contains:has-answer`, or a JSON object. */
function parseScorer(text: string): Record<string, unknown> {
  if (text.trim().startsWith('{')) {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new CliError(`--scorer: not valid JSON: ${(err as Error).message}`, EXIT.USAGE);
    }
  }
  const [type, name] = text.split(':');
  return { name: name || type, type };
}

/** `--threshold exact=0.9` (pass rate) or `--threshold exact.mean=0.8`. */
function parseThreshold(text: string, into: Record<string, Record<string, number>>): void {
  const match = /^([A-Za-z0-9][A-Za-z0-9_.-]*?)(?:\.(pass_rate|mean))?=(0(?:\.\d+)?|1(?:\.0+)?)$/.exec(text);
  if (!match) throw new CliError(`--threshold takes scorer=0..1 or scorer.mean=0..1, got ${JSON.stringify(text)}`, EXIT.USAGE);
  into[match[1]!] = { ...into[match[1]!], [match[2] ?? 'pass_rate']: Number(match[3]) };
}

/** Builds the provider config from `--provider` (a name, JSON, or a file) and its flags. */
function providerFrom(value: unknown, o: RunOptions): unknown {
  let provider = value;
  if (typeof provider === 'string') {
    const text = provider.trim();
    if (text.startsWith('{')) provider = JSON.parse(text);
    else if (/\.(ya?ml|json)$/i.test(text)) provider = readStructured(text, 'provider file');
    else provider = { type: text };
  }
  if (o.baseUrl !== undefined || o.apiKeyEnv !== undefined) {
    const base = (provider ?? { type: 'openai' }) as Record<string, unknown>;
    provider = { ...base, ...(o.baseUrl !== undefined ? { base_url: o.baseUrl } : {}), ...(o.apiKeyEnv !== undefined ? { api_key_env: o.apiKeyEnv } : {}) };
  }
  return provider ?? 'echo';
}

const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

/** Resolves files to a prompt version and a snapshot id (pushing them) and returns the request body. */
export async function buildEvaluationRequest(api: EvalApi, o: RunOptions, say: (line: string) => void): Promise<Record<string, unknown>> {
  const file = o.config ? (readStructured(o.config, 'config file') as Record<string, unknown> | null) ?? {} : {};
  if (typeof file !== 'object' || Array.isArray(file)) throw new CliError(`${o.config}: must hold a mapping of settings`, EXIT.USAGE);
  const base = o.config ? path.dirname(path.resolve(o.config)) : process.cwd();
  // Paths in the config file are relative to it; paths on the command line to the working directory.
  const fromConfig = (key: string) => {
    const v = file[key];
    return typeof v === 'string' && isFile(path.resolve(base, v)) ? path.resolve(base, v) : v;
  };

  const promptArg = o.prompt ?? fromConfig('prompt');
  if (promptArg === undefined) throw new CliError('no prompt: give --prompt FILE or name@N (or prompt: in --config)', EXIT.USAGE);
  let promptVersion: string;
  if (typeof promptArg === 'string' && isFile(promptArg)) {
    const stored = await pushPromptFile(api, promptArg);
    promptVersion = stored.prompt_version;
    say(`prompt ${promptVersion}${stored.created ? ' (new version)' : ''}`);
  } else if (typeof promptArg === 'string') promptVersion = promptArg;
  else throw new CliError('prompt: give a prompt file or name@N', EXIT.USAGE);

  const datasetArg = o.dataset ?? fromConfig('dataset');
  if (datasetArg === undefined) throw new CliError('no dataset: give --dataset FILE or sha256:<id> (or dataset: in --config)', EXIT.USAGE);
  let snapshotId: string;
  if (typeof datasetArg === 'string' && isSnapshotId(datasetArg)) snapshotId = datasetArg;
  else if (typeof datasetArg === 'string' && isFile(datasetArg)) {
    const snapshot = await pushDatasetFile(api, datasetArg);
    snapshotId = snapshot.data_snapshot_id;
    say(`dataset ${snapshotId} (${snapshot.row_count} rows${snapshot.created ? ', new snapshot' : ''})`);
  } else throw new CliError(`dataset: ${JSON.stringify(datasetArg)} is neither a file nor a data_snapshot_id`, EXIT.USAGE);

  const thresholds: Record<string, Record<string, number>> = { ...((file.thresholds as Record<string, Record<string, number>>) ?? {}) };
  for (const t of o.threshold) parseThreshold(t, thresholds);
  const params = { ...((file.params as Record<string, unknown>) ?? {}), ...Object.fromEntries(o.param.map(parseParam)) };
  const scorers = o.scorer.length ? o.scorer.map(parseScorer) : file.scorers;
  const pick = <T>(flag: T | undefined, key: string): T | undefined => (flag !== undefined ? flag : (file[key] as T | undefined));

  const request: Record<string, unknown> = {
    prompt_version: promptVersion,
    data_snapshot_id: snapshotId,
    provider: providerFrom(o.provider ?? file.provider, o),
    params,
  };
  const optional: Record<string, unknown> = {
    model: pick(o.model, 'model'),
    scorers,
    seed: pick(integer(o.seed, '--seed'), 'seed'),
    mode: pick(o.mode, 'mode'),
    sample_size: pick(integer(o.sample, '--sample'), 'sample_size'),
    concurrency: pick(integer(o.concurrency, '--concurrency'), 'concurrency'),
    thresholds: Object.keys(thresholds).length ? thresholds : undefined,
    name: pick(o.name, 'name'),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) request[k] = v;
  return request;
}

/** Prints the outcome of a finished run and sets the exit code (shared with `eval rerun`). */
export async function reportRun(api: EvalApi, run: EvaluationRun, o: { junit?: string | undefined; json?: boolean | undefined }): Promise<void> {
  if (o.junit) await writeJunitReport(api, run, o.junit);
  if (o.json) process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
  else {
    process.stdout.write(`${renderRunReport(run)}\n`);
    if (o.junit) process.stdout.write(`junit report: ${path.resolve(o.junit)}\n`);
    // The last line is the run folder, for scripts (`tail -n 1`).
    if (run.run_dir) process.stdout.write(`${run.run_dir}\n`);
  }
  process.exitCode = exitCodeFor(run);
}

export function registerEvalRunCommand(evalCommand: Command): void {
  evalCommand
    .command('run')
    .description(
      'run an evaluation and wait for it: progress on stderr, a summary table, the run folder on the last line; ' +
        `exit ${EXIT.OK} when every threshold passes, ${EXIT.THRESHOLDS_FAILED} when one fails, ${EXIT.RUN_FAILED} when the run failed`,
    )
    .option('--config <file>', 'YAML/JSON with prompt, dataset, provider, model, params, scorers, seed, mode, sample_size, concurrency, thresholds, name')
    .option('--prompt <file|name@N>', 'a prompt file (pushed first) or a stored prompt version')
    .option('--dataset <file|sha256:id>', 'a .jsonl/.csv file (uploaded first) or a snapshot id')
    .option('--provider <name|json|file>', 'echo (default), openai, http, a JSON object, or a YAML/JSON file')
    .option('--base-url <url>', 'openai: an OpenAI-compatible base URL (vLLM, Ollama: http://host:11434/v1, llama.cpp server)')
    .option('--api-key-env <NAME>', 'openai: the environment variable holding the API key (read by the process that runs the job)')
    .option('--model <name>')
    .option('--param <key=value>', 'a sampling param (repeatable), e.g. temperature=0', collect, [])
    .option('--scorer <type[:name]|json>', 'a scorer (repeatable; default exact)', collect, [])
    .option('--seed <n>')
    .option('--mode <live|replay>')
    .option('--sample <n>', 'evaluate n cases drawn by seeded sampling')
    .option('--concurrency <n>', 'provider requests in flight')
    .option('--threshold <scorer=min>', 'minimum pass rate (or scorer.mean=min), repeatable', collect, [])
    .option('--name <label>')
    .option('--junit <file>', 'write JUnit XML for CI')
    .option('--remote <url>', 'an evalops server to use (default: this machine, on the configured database)')
    .option('--no-progress', 'no progress output')
    .option('--json', 'print the finished run as JSON')
    .action(async (o: RunOptions) => {
      await withEvalApi(configFromEnv(), o.remote, async (api) => {
        const say = (line: string) => process.stderr.write(`${line}\n`);
        const request = await buildEvaluationRequest(api, o, say);
        const submitted = await api.call<EvaluationRun>('POST', '/v1/evaluations', request);
        say(`run ${submitted.run_id} queued (${api.via === 'local' ? 'running in this process' : `on ${api.baseUrl}`})`);
        const run = await waitForRun(api, submitted.run_id, { progress: o.progress });
        await reportRun(api, run, o);
      });
    });
}
