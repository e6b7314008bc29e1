import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  /** Values aligned with the x axis; null leaves a gap. */
  values: (number | null)[];
  /** Stacked bars instead of a line. */
  bars?: boolean;
}

/**
 * A time-series chart (uPlot, canvas). `x` holds unix seconds. Rebuilt when the data changes;
 * resized with its container.
 */
export function TimeChart(props: { title: string; x: number[]; series: ChartSeries[]; height?: number; yLabel?: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const width = Math.max(el.clientWidth, 300);
    const options: uPlot.Options = {
      title: props.title,
      width,
      height: props.height ?? 220,
      series: [
        {},
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.bars ? s.color : undefined,
          width: s.bars ? 0 : 2,
          paths: s.bars ? uPlot.paths.bars!({ size: [0.8, 40] }) : undefined,
          points: { show: false },
        })),
      ],
      axes: [{}, { label: props.yLabel, size: 60 }],
      scales: { x: { time: true } },
      // UTC like every other time on the pages (and in logs and the API).
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      legend: { show: true },
    };
    const plot = new uPlot(options, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 300), height: props.height ?? 220 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [props.title, props.x, props.series, props.height, props.yLabel]);
  return <div class="chart" ref={host} data-chart={props.title} />;
}

/** Horizontal bars for a few named counts (job statuses). */
export function CountBars(props: { title: string; counts: { label: string; value: number; color: string }[] }) {
  const max = Math.max(1, ...props.counts.map((c) => c.value));
  return (
    <figure class="count-bars" data-chart={props.title}>
      <figcaption>{props.title}</figcaption>
      {props.counts.map((c) => (
        <div class="count-bar" key={c.label}>
          <span class="count-bar-label">{c.label}</span>
          <span class="count-bar-track">
            <span class="count-bar-fill" style={{ width: `${(c.value / max) * 100}%`, background: c.color }} />
          </span>
          <span class="count-bar-value">{c.value.toLocaleString('en-US')}</span>
        </div>
      ))}
    </figure>
  );
}
