import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readSnapshotFile, type SnapshotCase } from './dataset-service.ts';
import { EvalError } from './eval-errors.ts';
import { type ChatMessage, renderMessages } from './prompt-template.ts';
import type { CachingProvider } from './response-cache.ts';
import { AtomicFileWriter, type FileInfo, RESULTS_FILE, SUMMARY_FILE, writeFileAtomic } from './run-artifacts.ts';
import { type CaseOutcome, type RunSummary, SummaryAccumulator, type Thresholds } from './run-summary.ts';
import { caseSeed, seededSample } from './sampling.ts';
import type { Scorer } from './scorers/scorer.ts';

/**
 * One evaluation over a stored snapshot: streams the rows, renders the prompt, asks the provider
 * (through the response record) with bounded concurrency, scores, and writes results.jsonl in
 * dataset order and summary.json. Memory stays flat whatever the dataset size: rows are read one
 * at a time and at most `window` finished rows wait for an earlier, slower one.
 *
 * results.jsonl holds only what the inputs and the recorded answers determine (no wall-clock time,
 * no "came from the record" flag), so a replay reproduces it byte for byte.
 */

export interface RunProgress {
  total: number;
  done: number;
  errors: number;
  passed: number;
  cached: number;
}

export interface EvaluationRunInput {
  runId: string;
  runDir: string;
  promptVersion: string;
  messages: readonly ChatMessage[];
  snapshotId: string;
  snapshotFile: string;
  rowCount: number;
  provider: CachingProvider;
  model: string;
  params: Record<string, unknown>;
  seed: number;
  mode: 'live' | 'replay';
  sampleSize: number | null;
  concurrency: number;
  scorers: readonly Scorer[];
  thresholds: Thresholds | undefined;
  signal: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
}

export interface EvaluationRunOutput {
  summary: RunSummary;
  files: FileInfo[];
  startedAt: Date;
  finishedAt: Date;
}

/** The snapshot file does not hash to its id: someone changed it on disk. */
export class SnapshotIntegrityError extends EvalError {
  constructor(snapshotId: string, actual: string) {
    super('CONFLICT', `the stored file of dataset snapshot ${snapshotId} hashes to sha256:${actual}: it was modified on disk; upload the dataset again`);
  }
}

/** Cases of the snapshot this run evaluates, in dataset order (the seeded sample when one is asked). */
async function* selectedCases(input: EvaluationRunInput, hash: ReturnType<typeof createHash>): AsyncGenerator<SnapshotCase & { seq: number }> {
  const chosen = input.sampleSize === null ? null : seededSample(input.rowCount, input.sampleSize, input.seed);
  let next = 0;
  let seq = 0;
  for await (const item of readSnapshotFile(input.snapshotFile)) {
    hash.update(item.line, 'utf8');
    if (chosen === null) yield { ...item, seq: seq++ };
    else if (next < chosen.length && chosen[next] === item.index) {
      next += 1;
      yield { ...item, seq: seq++ };
    }
  }
}

/** The sentence of an error, without stack. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Evaluates one case into its results line and its outcome for the summary. */
async function evaluateCase(input: EvaluationRunInput, item: SnapshotCase): Promise<{ line: string; outcome: CaseOutcome }> {
  const { row } = item;
  let output: string | null = null;
  let tokens: CaseOutcome['tokens'] = null;
  let latencyMs: number | null = null;
  let error: string | null = null;
  let cached = false;
  try {
    const messages = renderMessages(input.messages, row.vars);
    const answer = await input.provider.complete({ messages, model: input.model, params: input.params, seed: caseSeed(input.seed, row.id) }, { signal: input.signal });
    output = answer.output;
    // Fixed key order: a recorded answer comes back from jsonb with its keys reordered.
    tokens = answer.tokens ? { prompt: answer.tokens.prompt, completion: answer.tokens.completion, total: answer.tokens.total } : null;
    latencyMs = answer.latencyMs;
    cached = answer.cached;
  } catch (err) {
    if (input.signal.aborted) throw input.signal.reason;
    error = messageOf(err);
  }
  const scores: Record<string, { score: number | null; pass: boolean; reason: string }> = {};
  if (output !== null) {
    for (const scorer of input.scorers) {
      try {
        scores[scorer.name] = await scorer.score({ output, expected: row.expected, vars: row.vars }, { signal: input.signal });
      } catch (err) {
        if (input.signal.aborted) throw input.signal.reason;
        scores[scorer.name] = { score: null, pass: false, reason: `the ${scorer.type} scorer failed: ${messageOf(err)}` };
      }
    }
  }
  const pass = error === null && input.scorers.every((s) => scores[s.name]?.pass === true);
  // Fixed key order: the line must come out the same on every run.
  const line = `${JSON.stringify({
    id: row.id,
    vars: row.vars,
    expected: row.expected ?? null,
    output,
    pass,
    scores,
    latency_ms: latencyMs,
    tokens,
    error,
  })}\n`;
  return { line, outcome: { error, pass, latencyMs, tokens, cached, scores } };
}

/** Writes lines in sequence order as they complete out of order. */
class OrderedLines {
  private next = 0;
  private readonly ready = new Map<number, string>();
  private writing: Promise<void> = Promise.resolve();
  private waiters: Array<() => void> = [];

  constructor(private readonly out: AtomicFileWriter) {}

  /** Sequence number of the first line not yet written. */
  get written(): number {
    return this.next;
  }

  put(seq: number, line: string): Promise<void> {
    this.ready.set(seq, line);
    this.writing = this.writing.then(async () => {
      while (this.ready.has(this.next)) {
        const text = this.ready.get(this.next)!;
        this.ready.delete(this.next);
        this.next += 1;
        await this.out.write(text);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    return this.writing;
  }

  /** Resolves once the writer has caught up to within `window` of `seq`. */
  async waitForRoom(seq: number, window: number): Promise<void> {
    while (seq - this.next >= window) await new Promise<void>((r) => this.waiters.push(r));
  }

  drained(): Promise<void> {
    return this.writing;
  }
}

/** Cases a replay evaluates at once (see runEvaluation). */
const REPLAY_PARALLELISM = 128;

/** How many cases a run has in progress at once (see runEvaluation); the record's batches are sized from it. */
export function runParallelism(mode: 'live' | 'replay', concurrency: number): number {
  return mode === 'replay' ? Math.max(concurrency, REPLAY_PARALLELISM) : concurrency * 4 + 8;
}

/** Runs the evaluation and writes results.jsonl and summary.json atomically. */
export async function runEvaluation(input: EvaluationRunInput): Promise<EvaluationRunOutput> {
  const startedAt = new Date();
  const total = input.sampleSize === null ? input.rowCount : Math.min(input.sampleSize, input.rowCount);
  const accumulator = new SummaryAccumulator(input.scorers);
  const results = new AtomicFileWriter(input.runDir, RESULTS_FILE);
  const lines = new OrderedLines(results);
  const snapshotHash = createHash('sha256');
  const cases = selectedCases(input, snapshotHash)[Symbol.asyncIterator]();
  // `concurrency` bounds provider requests (the provider's limiter enforces it). Cases beyond it
  // do the rest of their work (record lookup and write, scoring) while the requests are out, so the
  // endpoint always has `concurrency` requests. A replay makes no request at all: it evaluates many
  // cases at once, and their record lookups share one query per batch.
  const workers = runParallelism(input.mode, input.concurrency);
  const window = Math.max(64, workers * 8);
  // Every case in flight listens on the run's signal (provider call, limiter, retry sleep).
  setMaxListeners(Math.max(64, workers * 4), input.signal);
  let exhausted = false;
  const report = () => input.onProgress?.({ total, ...countsOf(accumulator) });

  const worker = async (): Promise<void> => {
    while (!exhausted) {
      if (input.signal.aborted) throw input.signal.reason;
      const next = await cases.next();
      if (next.done) {
        exhausted = true;
        return;
      }
      const mine = next.value.seq;
      await lines.waitForRoom(mine, window);
      const { line, outcome } = await evaluateCase(input, next.value);
      accumulator.add(outcome);
      await lines.put(mine, line);
      report();
    }
  };

  try {
    report();
    // Every worker settles before the file is committed or abandoned.
    const settled = await Promise.allSettled(Array.from({ length: workers }, () => worker()));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    await lines.drained();
    const actual = snapshotHash.digest('hex');
    if (`sha256:${actual}` !== input.snapshotId) throw new SnapshotIntegrityError(input.snapshotId, actual);
  } catch (err) {
    await lines.drained().catch(() => undefined);
    await results.keepPartial();
    throw err;
  }
  const resultsInfo = await results.commit();
  const finishedAt = new Date();
  const summary = accumulator.finish(
    { run_id: input.runId, prompt_version: input.promptVersion, data_snapshot_id: input.snapshotId, model: input.model, mode: input.mode },
    input.thresholds,
    { startedAt, finishedAt },
  );
  const summaryInfo = await writeFileAtomic(input.runDir, SUMMARY_FILE, `${JSON.stringify(summary, null, 2)}\n`);
  return { summary, files: [resultsInfo, summaryInfo], startedAt, finishedAt };
}

function countsOf(accumulator: SummaryAccumulator): Omit<RunProgress, 'total'> {
  return accumulator.counts;
}
