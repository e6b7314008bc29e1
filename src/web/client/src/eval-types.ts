/**
 * The shapes the evaluation, compare, prompt and dataset pages read from the API
 * (/v1/evaluations…, /v1/prompts…, /v1/datasets…), as the server sends them.
 */

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface RunProgress {
  total: number;
  done: number;
  errors: number;
  passed: number;
  cached: number;
}

export interface ScorerSummary {
  type: string;
  scored: number;
  mean: number | null;
  pass_rate: number | null;
  passed: number;
  failed: number;
}

export interface ThresholdCheck {
  scorer: string;
  metric: 'pass_rate' | 'mean';
  min: number;
  actual: number | null;
  pass: boolean;
}

export interface RunSummary {
  cases: number;
  completed: number;
  errors: number;
  passed: number;
  pass_rate: number | null;
  scorers: Record<string, ScorerSummary>;
  latency_ms: { p50: number | null; p95: number | null; mean: number | null; max: number | null };
  tokens: { prompt: number; completion: number; total: number; cases_without_usage: number };
  thresholds: { passed: boolean; checks: ThresholdCheck[] };
  execution: { cached: number; provider_calls: number; started_at: string; finished_at: string; duration_ms: number };
}

export interface RunFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface EvaluationRun {
  run_id: string;
  job_id: string | null;
  status: RunStatus;
  name: string | null;
  prompt_version: string;
  data_snapshot_id: string;
  provider: string;
  model: string;
  mode: 'live' | 'replay';
  seed: number;
  sample_size: number | null;
  concurrency: number;
  rerun_of: string | null;
  progress: RunProgress | null;
  thresholds_passed: boolean | null;
  summary: RunSummary | null;
  metadata: Record<string, unknown> | null;
  run_dir: string | null;
  files: RunFile[] | null;
  mlflow: { tracking_uri?: string; experiment_id?: string; run_id?: string } | null;
  error_message: string | null;
  spec: { scorers?: Array<{ name: string; type: string }>; provider?: unknown; params?: Record<string, unknown> } & Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface RunList {
  runs: EvaluationRun[];
  next_cursor: string | null;
}

export interface CaseRecord {
  index: number;
  id: string;
  vars: Record<string, unknown>;
  expected: unknown;
  output: string | null;
  pass: boolean;
  scores: Record<string, { score: number | null; pass: boolean; reason: string | null }>;
  latency_ms: number | null;
  tokens: { prompt: number; completion: number; total: number } | null;
  error: string | null;
}

export interface CasePage {
  total: number;
  matched: number;
  offset: number;
  limit: number;
  cases: CaseRecord[];
}

export interface ScorerComparison {
  scorer: string;
  pairedCases: number;
  baseMean: number | null;
  headMean: number | null;
  meanDelta: number | null;
  ci: { lower: number; upper: number; confidence: number; method: 'bootstrap' | 'normal'; resamples: number | null } | null;
  pairedPassCases: number;
  basePassRate: number | null;
  headPassRate: number | null;
  mcnemar: { passToFail: number; failToPass: number; exactP: number; chiSquare: number | null; chiSquareP: number | null };
}

export interface CaseSide {
  output: string | null;
  error: string | null;
}

export interface FlippedCase {
  id: string;
  scorer: string;
  from: 'pass' | 'fail';
  to: 'pass' | 'fail';
  baseScore: number | null;
  headScore: number | null;
  vars?: Record<string, unknown>;
  expected?: unknown;
  base?: CaseSide;
  head?: CaseSide;
  truncated?: boolean;
}

export interface BriefRun {
  run_id: string;
  prompt_version: string;
  data_snapshot_id: string;
  model: string;
  mode: 'live' | 'replay';
  status: RunStatus;
}

export interface Comparison {
  base: BriefRun;
  head: BriefRun;
  same_dataset: boolean;
  pairedCases: number;
  onlyInBase: number;
  onlyInHead: number;
  scorers: ScorerComparison[];
  flipped: FlippedCase[];
  flippedTotal: number;
}

export interface PromptListItem {
  name: string;
  latest_version: number;
  prompt_version: string;
  versions: number;
  updated_at: string;
}

export interface PromptVersion {
  prompt_version: string;
  name: string;
  version: number;
  description: string | null;
  messages: Array<{ role: string; content: string }>;
  params: Record<string, unknown>;
  content_hash: string;
  created_at: string;
}

export interface DatasetSnapshot {
  data_snapshot_id: string;
  name: string | null;
  source_format: string;
  row_count: number;
  byte_count: number;
  created_at: string;
}

export interface DatasetRow {
  id: string;
  vars: Record<string, unknown>;
  expected?: unknown;
  metadata?: Record<string, unknown>;
}
