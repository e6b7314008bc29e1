import { Fragment } from 'preact';
import { formatDuration, formatNumber } from '../format.ts';
import type { ComponentHealth, DetailedHealth } from '../ops-types.ts';
import { StatusBadge } from './status-badge.tsx';

/** The facts worth a glance per component, in this order; anything else the probe reports follows. */
const KEY_DETAILS: Record<string, string[]> = {
  database: ['kind', 'location', 'migrations'],
  redis: ['maxmemory_policy', 'used_by'],
  background_tasks: ['runner_mode', 'active', 'concurrency', 'queued', 'running', 'oldest_queued_age_ms', 'failed_last_hour', 'live_workers'],
};

function detailText(name: string, value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (name.endsWith('_ms') && typeof value === 'number') return formatDuration(value);
  if (typeof value === 'number') return formatNumber(value);
  if (name === 'migrations' && typeof value === 'object') {
    const m = value as { current?: string | null; head?: string | null; pending?: string[] };
    const pending = m.pending?.length ? `, ${m.pending.length} pending` : '';
    return m.current === m.head ? `at head (${m.head ?? 'none'})` : `${m.current ?? 'none'} of ${m.head ?? 'none'}${pending}`;
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function detailRows(component: string, details: Record<string, unknown>): [string, string][] {
  const wanted = KEY_DETAILS[component] ?? [];
  const keys = [...wanted.filter((k) => k in details), ...Object.keys(details).filter((k) => !wanted.includes(k) && k !== 'worker_id')];
  return keys.slice(0, 8).map((k) => [k.replace(/_ms$/, '').replace(/_/g, ' '), detailText(k, details[k])]);
}

function HealthCard({ name, health }: { name: string; health: ComponentHealth }) {
  const rows = detailRows(name, health.details);
  return (
    <div class={`card health-card health-${health.status}`} data-component={name}>
      <div class="card-title">
        <span>{name}</span>
        <StatusBadge status={health.status} />
      </div>
      <div class="health-latency">
        <span class="muted">probe</span> {health.latency_ms === null ? '—' : formatDuration(health.latency_ms)}
      </div>
      {health.message ? <div class="health-message">{health.message}</div> : null}
      {rows.length ? (
        <dl class="facts health-facts">
          {rows.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      ) : null}
    </div>
  );
}

/** One card per component of /health/detailed: status, probe latency, what matters of its details. */
export function HealthCards({ health }: { health: DetailedHealth }) {
  return (
    <div class="cards health-cards">
      {Object.entries(health.components).map(([name, component]) => (
        <HealthCard key={name} name={name} health={component} />
      ))}
    </div>
  );
}
