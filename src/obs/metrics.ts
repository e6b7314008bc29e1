import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, on a registry of its own (never prom-client's global one),
 * so two apps in one process (tests) do not share counters. Metric names are a public contract:
 * slo.yaml and the generated alert rules query them.
 */
export class Metrics {
  readonly registry = new Registry();
  /** `http_requests_total` and `http_request_duration_seconds`, by method, route pattern and status code. */
  readonly http: HttpRequestMetrics;
  readonly jobsSubmitted: Counter<'type'>;
  readonly jobsFinished: Counter<'type' | 'status'>;
  readonly jobDuration: Histogram<'type' | 'status'>;
  readonly queueDepth: Gauge<'status'>;

  constructor(options: { queueDepth?: () => Promise<Record<string, number>> } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.http = new HttpRequestMetrics(this.registry);
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

/** Upper bounds (seconds) of `http_request_duration_seconds`; `+Inf` is implied. */
export const HTTP_DURATION_BUCKETS_S: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

type HttpLabels = Readonly<{ method: string; route: string; status_code: string }>;

/** One series: the requests of one method, route pattern and status code. */
interface HttpSeries {
  readonly labels: HttpLabels;
  count: number;
  sum: number;
  /** Observations per bound of HTTP_DURATION_BUCKETS_S (not cumulative); slower ones are only in `count`. */
  readonly buckets: number[];
}

/**
 * The request metrics of one method and route pattern: a series per status code. The request
 * observer takes one per route when the route is registered, so counting a request is a lookup by
 * status and three additions.
 */
export class RouteRequestMetrics {
  readonly #byStatus = new Map<number, HttpSeries>();
  readonly #method: string;
  readonly #route: string;
  readonly #onNewSeries: (series: HttpSeries) => void;

  constructor(method: string, route: string, onNewSeries: (series: HttpSeries) => void) {
    this.#method = method;
    this.#route = route;
    this.#onNewSeries = onNewSeries;
  }

  /** Counts one answered request and its duration. */
  observe(statusCode: number, seconds: number): void {
    let series = this.#byStatus.get(statusCode);
    if (series === undefined) {
      series = { labels: { method: this.#method, route: this.#route, status_code: String(statusCode) }, count: 0, sum: 0, buckets: HTTP_DURATION_BUCKETS_S.map(() => 0) };
      this.#byStatus.set(statusCode, series);
      this.#onNewSeries(series);
    }
    series.count += 1;
    series.sum += seconds;
    for (let i = 0; i < HTTP_DURATION_BUCKETS_S.length; i++) {
      if (seconds <= HTTP_DURATION_BUCKETS_S[i]!) {
        series.buckets[i]! += 1;
        break;
      }
    }
  }
}

const REQUESTS_NAME = 'http_requests_total';
const DURATION_NAME = 'http_request_duration_seconds';

/**
 * `http_requests_total` (counter) and `http_request_duration_seconds` (histogram), by method, route
 * pattern and status code, with the names, labels, buckets and text that prom-client's Counter and
 * Histogram give them. They are plain numbers per series, turned into Prometheus values only when
 * scraped: prom-client's inc() and observe() build, validate and hash a label object on each call,
 * about a microsecond per request, which was a tenth of what a /health answer costs.
 */
export class HttpRequestMetrics {
  readonly #series: HttpSeries[] = [];
  readonly #routes = new Map<string, Map<string, RouteRequestMetrics>>();

  constructor(registry: Registry) {
    // The registry formats anything that has a name and get(); prom-client's types admit its own classes only.
    registry.registerMetric(this.#collector(REQUESTS_NAME, 'HTTP requests answered, by route pattern and status code', 'counter', () => this.#requestValues()) as unknown as Metric);
    registry.registerMetric(this.#collector(DURATION_NAME, 'HTTP request duration in seconds, by route pattern and status code', 'histogram', () => this.#durationValues()) as unknown as Metric);
  }

  /** The series of one method and route pattern (`unmatched` for requests no route matched). */
  forRoute(method: string, route: string): RouteRequestMetrics {
    let byRoute = this.#routes.get(method);
    if (byRoute === undefined) this.#routes.set(method, (byRoute = new Map()));
    let metrics = byRoute.get(route);
    if (metrics === undefined) byRoute.set(route, (metrics = new RouteRequestMetrics(method, route, (series) => this.#series.push(series))));
    return metrics;
  }

  #collector(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]) {
    return {
      name,
      help,
      type,
      aggregator: 'sum' as const,
      get: async () => ({ name, help, type, aggregator: 'sum' as const, values: values() }),
      reset: () => {
        for (const series of this.#series) {
          series.count = 0;
          series.sum = 0;
          series.buckets.fill(0);
        }
      },
    };
  }

  #requestValues(): MetricValue[] {
    return this.#series.map((s) => ({ labels: s.labels, value: s.count }));
  }

  #durationValues(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const s of this.#series) {
      let cumulative = 0;
      HTTP_DURATION_BUCKETS_S.forEach((le, i) => {
        cumulative += s.buckets[i]!;
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${DURATION_NAME}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${DURATION_NAME}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${DURATION_NAME}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${DURATION_NAME}_count` });
    }
    return values;
  }
}

interface MetricValue {
  labels: Readonly<Record<string, string | number>>;
  value: number;
  metricName?: string;
}
