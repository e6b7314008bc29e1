/**
 * The shapes the overview and jobs pages read from the API (GET /health/detailed, /v1/slo,
 * /v1/slo/requests, /v1/jobs…), as the server sends them.
 */

export type ComponentStatus = 'healthy' | 'degraded' | 'unhealthy' | 'disabled';

export interface ComponentHealth {
  status: ComponentStatus;
  latency_ms: number | null;
  message?: string;
  details: Record<string, unknown>;
}

export interface DetailedHealth {
  status: Exclude<ComponentStatus, 'disabled'>;
  version: string;
  commit: string | null;
  uptime_s: number;
  checked_at: string;
  components: Record<string, ComponentHealth>;
}

export interface SloWindow {
  window: string;
  status: 'ok' | 'insufficient_data';
  good: number;
  bad: number;
  total: number;
  sli: number | null;
  errorRatio: number | null;
  burnRate: number | null;
}

export interface SloAlert {
  name: string;
  severity: 'page' | 'ticket';
  burnRateThreshold: number;
  longWindow: string;
  shortWindow: string;
  longBurnRate: number | null;
  shortBurnRate: number | null;
  status: 'firing' | 'ok' | 'insufficient_data';
}

export interface SloStatus {
  name: string;
  description: string;
  sli: string;
  objective_percent: number;
  window: string;
  runbook_section: string;
  runbook_url: string;
  report: {
    objective: number;
    errorBudget: number;
    minEvents: number;
    windows: SloWindow[];
    full: SloWindow;
    budget: { status: 'ok' | 'insufficient_data'; errorBudget: number; allowedBadEvents: number | null; badEvents: number; remaining: number | null };
    alerts: SloAlert[];
    firing: 'page' | 'ticket' | 'none';
  };
}

export interface SloStatusReport {
  service: string;
  source: string;
  measured_at: string;
  slos: SloStatus[];
}

export interface RequestSeries {
  since: string;
  until: string;
  step_seconds: number;
  totals: { requests: number; errors_5xx: number; error_ratio: number | null };
  buckets: { time: string; requests: number; errors_5xx: number; error_ratio: number | null }[];
}

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobStats {
  since: string;
  counts: Record<JobStatus, number>;
  total: number;
}

export interface Job {
  job_id: string;
  type: string;
  status: JobStatus;
  payload: unknown;
  result: unknown;
  error_message: string | null;
  attempts: number;
  max_attempts: number;
  priority: number;
  run_at: string;
  idempotency_key: string | null;
  cancel_requested_at: string | null;
  locked_by: string | null;
  lease_expires_at: string | null;
  progress: unknown;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

export interface JobPage {
  jobs: Job[];
  next_cursor: string | null;
}

/** Bar colours of the job statuses, matching their badges. */
export const JOB_STATUS_COLORS: Record<JobStatus, string> = {
  queued: '#d97706',
  running: '#2563eb',
  succeeded: '#15803d',
  failed: '#b91c1c',
  cancelled: '#6b7280',
};
