import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HTTP_DURATION_BUCKETS_S, Metrics } from '../../../src/obs/metrics.ts';

/** The two HTTP families of a registry's text exposition, in order. */
async function httpFamilies(registry: Registry): Promise<string> {
  const text = await registry.metrics();
  return text
    .split('\n\n')
    .map((family) => family.trim())
    .filter((family) => /^# HELP http_request/.test(family))
    .join('\n\n');
}

describe('HTTP request metrics', () => {
  it('expose the same text as prom-client Counter and Histogram fed the same requests', async () => {
    const requests: Array<[method: string, route: string, status: number, seconds: number]> = [
      ['GET', '/health', 200, 0.0004],
      ['GET', '/health', 200, 0.001],
      ['GET', '/v1/jobs/:id', 200, 0.003],
      ['GET', '/v1/jobs/:id', 404, 0.012],
      ['POST', '/v1/jobs', 202, 0.3],
      ['POST', '/v1/jobs', 503, 12],
      ['GET', 'unmatched', 404, 0.002],
      ['GET', '/health', 200, 0.0099],
    ];

    const ours = new Metrics();
    for (const [method, route, status, seconds] of requests) ours.http.forRoute(method, route).observe(status, seconds);

    const reference = new Registry();
    const labelNames = ['method', 'route', 'status_code'] as const;
    const counter = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status code', labelNames, registers: [reference] });
    const histogram = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by route pattern and status code',
      labelNames,
      buckets: [...HTTP_DURATION_BUCKETS_S],
      registers: [reference],
    });
    for (const [method, route, status, seconds] of requests) {
      const labels = { method, route, status_code: String(status) };
      counter.inc(labels);
      histogram.observe(labels, seconds);
    }

    const text = await httpFamilies(ours.registry);
    expect(text).toBe(await httpFamilies(reference));
    expect(text).toContain('http_requests_total{method="GET",route="/health",status_code="200"} 3');
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.001",method="GET",route="/health",status_code="200"} 2');
    expect(text).toContain('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/jobs",status_code="503"} 1');
  });

  it('reads as JSON and resets like prom-client metrics', async () => {
    const metrics = new Metrics();
    metrics.http.forRoute('GET', '/health').observe(200, 0.002);
    const json = await metrics.registry.getMetricsAsJSON();
    const requests = json.find((m) => m.name === 'http_requests_total');
    expect(requests).toMatchObject({ type: 'counter', values: [{ labels: { method: 'GET', route: '/health', status_code: '200' }, value: 1 }] });
    metrics.registry.resetMetrics();
    expect(await metrics.registry.getSingleMetricAsString('http_requests_total')).toContain('status_code="200"} 0');
  });
});
