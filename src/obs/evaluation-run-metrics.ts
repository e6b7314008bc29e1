import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Database } from '../db/schema.ts';

/**
 * `evalops_evaluation_runs_finished_total{status}`: the metric the evaluation-run-success SLO's
 * Prometheus rules read (src/obs/slo-config.ts). It is read from `evaluation_runs` at scrape time
 * (as `evalops_jobs_queue_depth` is from `jobs`), so it never resets with a restart and counts runs
 * wherever they ran (API or worker). Every API instance reports the same totals: the SLO's
 * `sum(rate(…))` ratio is unaffected, while its event counts scale with the number of instances
 * scraped (the `min_events` guard is then reached sooner).
 */
export function registerEvaluationRunsFinished(registry: Registry, db: Kysely<Database>, timeoutMs: number): Counter<'status'> {
  return new Counter({
    name: 'evalops_evaluation_runs_finished_total',
    help: 'Evaluation runs that reached a final status, by status (read from evaluation_runs at scrape time)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      let timer: NodeJS.Timeout | undefined;
      try {
        const rows = await Promise.race([
          db.selectFrom('evaluation_runs').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('status', 'in', ['succeeded', 'failed', 'cancelled']).groupBy('status').execute(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
          }),
        ]);
        this.reset();
        for (const status of ['succeeded', 'failed', 'cancelled']) this.inc({ status }, Number(rows.find((r) => r.status === status)?.n ?? 0));
      } catch {
        // A scrape must not fail because the database is down; the last values stay.
      } finally {
        clearTimeout(timer);
      }
    },
  });
}
