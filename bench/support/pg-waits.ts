import type pg from 'pg';
import { sleep } from './processes.ts';

/**
 * Samples pg_stat_activity for one database while a run goes on, to show what its backends wait
 * on (a lock, WAL flushes, or the application: ClientRead). Diagnostic only: the sampling
 * connection adds a little load, so figures measured with it on are not for comparison.
 * The benchmark's own connections (application_name evalops-bench*) are left out.
 */
export class WaitSampler {
  private readonly counts = new Map<string, number>();
  private samples = 0;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly database: string,
    private readonly intervalMs = 10,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const { rows } = await this.pool.query<{ k: string }>(
          `SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || ' ' || state || ' '
                  || left(regexp_replace(query, '\\s+', ' ', 'g'), 32) AS k
           FROM pg_stat_activity
           WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
             AND application_name NOT LIKE 'evalops-bench%'`,
          [this.database],
        );
        this.samples++;
        for (const { k } of rows) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
        await sleep(this.intervalMs);
      }
    })();
  }

  /** Stops sampling; the `top` most frequent states as "average backends in that state". */
  async stop(top = 8): Promise<string[]> {
    this.running = false;
    await this.loop;
    return [...this.counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, n]) => `${(n / Math.max(1, this.samples)).toFixed(2).padStart(6)} backends  ${k}`);
  }
}
