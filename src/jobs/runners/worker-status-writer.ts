import { type HeldJob, isDataError } from '../job-executor.ts';
import type { Completion } from '../job-store.ts';

type PendingClaim = { id: string; resolve: (row: HeldJob | undefined) => void; reject: (e: unknown) => void };
type PendingCompletion = { completion: Completion; resolve: () => void; reject: (e: unknown) => void };

/** Claims in one statement at most (completions: every one pending). */
const MAX_CLAIMS_PER_STATEMENT = 500;

/**
 * A worker's status writes in few statements: the claims of the deliveries that arrived and the
 * successes of the jobs that finished go out together in one statement (StatusStatement), one round
 * trip and one commit for all of them. What arrives in one turn of the event loop is sent
 * together; what arrives while `maxInFlight` statements are already out waits for the first of
 * them to return and goes in the next. More than one statement in flight keeps a claim from waiting
 * behind a whole statement (and its commit) that left just before it; PostgreSQL flushes commits
 * that arrive together with one WAL write.
 */
export class StatusWriter {
  private claims: PendingClaim[] = [];
  private completions: PendingCompletion[] = [];
  private scheduled = false;
  private inFlight = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly write: (completions: Completion[], claimIds: string[]) => Promise<HeldJob[]>,
    private readonly maxInFlight = 2,
  ) {}

  /** The claimed row, or undefined when the row was not claimable. */
  claim(id: string): Promise<HeldJob | undefined> {
    return new Promise((resolve, reject) => {
      this.claims.push({ id, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once the success is stored. */
  complete(completion: Completion): Promise<void> {
    return new Promise((resolve, reject) => {
      this.completions.push({ completion, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once nothing is pending or in flight. */
  drain(): Promise<void> {
    if (this.inFlight === 0 && !this.scheduled && !this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private get pending(): boolean {
    return this.claims.length > 0 || this.completions.length > 0;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    while (this.pending && this.inFlight < this.maxInFlight) {
      const claims = this.claims.splice(0, MAX_CLAIMS_PER_STATEMENT);
      const completions = this.completions.splice(0);
      this.inFlight++;
      void this.sendBatch(claims, completions).finally(() => {
        this.inFlight--;
        // What arrived meanwhile goes at once: it has waited a statement already.
        this.send();
        if (this.inFlight === 0 && !this.pending) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  /**
   * One statement for the batch. When PostgreSQL refuses the batch's data (a result jsonb cannot
   * hold, such as a NUL character), the claims are sent again without the successes, which fail:
   * the executor stores each of them again alone, so only the one at fault fails. Any other error
   * (the database unreachable) fails the whole batch.
   */
  private async sendBatch(claims: PendingClaim[], completions: PendingCompletion[]): Promise<void> {
    try {
      const rows = await this.write(
        completions.map((c) => c.completion),
        claims.map((c) => c.id),
      );
      const byId = new Map(rows.map((r) => [r.job_id, r]));
      for (const c of claims) {
        // One claimed row, one runner: a second delivery of the same id in this batch gets nothing.
        c.resolve(byId.get(c.id));
        byId.delete(c.id);
      }
      for (const c of completions) c.resolve();
    } catch (err) {
      for (const c of completions) c.reject(err);
      if (claims.length && completions.length && isDataError(err)) return this.sendBatch(claims, []);
      for (const c of claims) c.reject(err);
    }
  }
}
