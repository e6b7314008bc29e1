import { useMemo } from 'preact/hooks';
import { formatNumber, formatPercent } from '../format.ts';
import type { RequestSeries } from '../ops-types.ts';
import { type ChartSeries, TimeChart } from './chart.tsx';

const stepText = (seconds: number) => (seconds % 3600 === 0 ? `${seconds / 3600} h` : `${seconds / 60} min`);

/**
 * The request rate (requests per minute, and the 5xx among them) and the 5xx ratio over time, from
 * GET /v1/slo/requests. A bucket without requests has no ratio: a gap, not a zero.
 */
export function RequestCharts({ series }: { series: RequestSeries }) {
  const perMinute = 60 / series.step_seconds;
  const x = useMemo(() => series.buckets.map((b) => Date.parse(b.time) / 1000), [series]);
  const rate = useMemo<ChartSeries[]>(
    () => [
      { label: 'requests/min', color: '#2563eb', values: series.buckets.map((b) => b.requests * perMinute) },
      { label: '5xx/min', color: '#b91c1c', values: series.buckets.map((b) => b.errors_5xx * perMinute) },
    ],
    [series, perMinute],
  );
  const ratio = useMemo<ChartSeries[]>(
    // Bars: a single minute with errors still shows, where a line needs two points.
    () => [{ label: '5xx ratio (%)', color: '#b91c1c', bars: true, values: series.buckets.map((b) => (b.error_ratio === null ? null : b.error_ratio * 100)) }],
    [series],
  );
  const { totals } = series;
  return (
    <div class="request-charts">
      <p class="muted request-totals">
        {formatNumber(totals.requests)} requests, {formatNumber(totals.errors_5xx)} answered 5xx ({formatPercent(totals.error_ratio, 2)}), in buckets of{' '}
        {stepText(series.step_seconds)}; counts are written by each API process every few seconds.
      </p>
      <div class="grid">
        <TimeChart title="Request rate" x={x} series={rate} yLabel="per minute" />
        <TimeChart title="5xx ratio" x={x} series={ratio} yLabel="%" />
      </div>
    </div>
  );
}
