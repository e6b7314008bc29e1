import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, on a registry of its own (never prom-client's global one),
 * so two apps in one process (tests) do not share counters. Metric names are a public contract:
 * slo.yaml and the generated alert rules query them.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly jobsSubmitted: Counter<'type'>;
  readonly jobsFinished: Counter<'type' | 'status'>;
  readonly jobDuration: Histogram<'type' | 'status'>;
  readonly queueDepth: Gauge<'status'>;

  constructor(options: { queueDepth?: () => Promise<Record<string, number>> } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status code', labelNames: ['method', 'route', 'status_code'], registers });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.jobsSubmitted = new Counter({ name: 'evalops_jobs_submitted_total', help: 'Jobs accepted, by type', labelNames: ['type'], registers });
    this.jobsFinished = new Counter({ name: 'evalops_jobs_finished_total', help: 'Jobs that reached a final status, by type and status', labelNames: ['type', 'status'], registers });
    this.jobDuration = new Histogram({
      name: 'evalops_job_duration_seconds',
      help: 'Run time of a job attempt in seconds, by type and outcome',
      labelNames: ['type', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    const depth = options.queueDepth;
    this.queueDepth = new Gauge({
      name: 'evalops_jobs_queue_depth',
      help: 'Jobs in the jobs table by status (queued, running), read at scrape time',
      labelNames: ['status'],
      registers,
      async collect() {
        if (!depth) return;
        try {
          const counts = await depth();
          for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
        } catch {
          // A scrape must not fail because the database is down; /health/detailed says why.
        }
      },
    });
  }
}
