import type { JobRow } from '../../db/schema.ts';
import type { Completion } from '../job-store.ts';

/**
 * A worker's status writes of one moment in one statement: the claims of the deliveries that arrived
 * and the completions of the jobs that finished in the same turn of the event loop (or while the
 * previous statement was in flight) go out together (completeAndClaimJobs): one round trip and one
 * commit where claims and completions would each take their own.
 */
export class StatusWriter {
  private claims: Array<{ id: string; resolve: (row: JobRow | undefined) => void; reject: (e: unknown) => void }> = [];
  private completions: Array<{ batch: Completion[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly write: (completions: Completion[], claimIds: string[]) => Promise<JobRow[]>) {}

  claim(id: string): Promise<JobRow | undefined> {
    return new Promise((resolve, reject) => {
      this.claims.push({ id, resolve, reject });
      this.schedule();
    });
  }

  complete(batch: Completion[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.completions.push({ batch, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    this.flushing ??= new Promise((r) => setImmediate(r)).then(() => this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    while (this.claims.length || this.completions.length) {
      const claims = this.claims.splice(0, 500);
      const completions = this.completions.splice(0);
      try {
        const rows = new Map((await this.write(completions.flatMap((c) => c.batch), claims.map((c) => c.id))).map((r) => [r.job_id, r]));
        for (const c of claims) c.resolve(rows.get(c.id));
        for (const c of completions) c.resolve();
      } catch (err) {
        for (const c of claims) c.reject(err);
        for (const c of completions) c.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
