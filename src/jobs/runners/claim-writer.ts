import type { JobRow } from '../../db/schema.ts';
import type { Completion } from '../job-store.ts';

/** One statement: stores `completions` and claims up to `claim` due jobs (0: none); the claimed rows. */
export type ClaimStatement = (completions: Completion[], claim: number) => Promise<JobRow[]>;

/** What the writer needs to know of its runner. */
export interface ClaimSlots {
  /** Slots not taken by a job the runner holds (jobs whose success is being stored still count). */
  free(): number;
  /** False once the runner stops taking jobs. */
  claimable(): boolean;
  /** Jobs just claimed: run them. */
  claimed(jobs: JobRow[]): void;
  failed(err: unknown): void;
}

/**
 * Statements in flight at once. One: what is asked meanwhile waits for it and goes out together,
 * which keeps the statements per job lowest; a second one in flight bought no throughput.
 */
const MAX_IN_FLIGHT = 1;
/** Successes stored by one statement at most. */
const MAX_COMPLETIONS = 500;

/**
 * The in-process runner's status writes in few statements. The successes of the jobs that finished
 * in one turn of the event loop go out together, with the claim for the free slots (theirs
 * included) when one is wanted; so a busy runner refills its slots with one round trip and one
 * commit instead of two. What is asked while MAX_IN_FLIGHT statements are out goes in the next.
 * Claims in flight reserve their slots: the runner never holds more jobs than its concurrency.
 */
export class ClaimWriter {
  private completions: Array<{ completion: Completion; resolve: () => void; reject: (err: unknown) => void }> = [];
  /** Woken, or the last claim came back full, and no claim has been sent since. */
  private wanted = false;
  private scheduled = false;
  private claimScheduled = false;
  private inFlight = 0;
  /** Slots promised to claims in flight. */
  private reserved = 0;

  constructor(
    private readonly write: ClaimStatement,
    private readonly slots: ClaimSlots,
  ) {}

  /** A claim is wanted that has not been sent (no free slot yet). */
  get claimWanted(): boolean {
    return this.wanted;
  }

  /**
   * More jobs may be due: claims into the free slots soon. Wake-ups of one synchronous stretch (the
   * submits of one INSERT) share one claim, sent before their HTTP answers are written.
   */
  wantClaim(): void {
    this.wanted = true;
    if (this.claimScheduled) return;
    this.claimScheduled = true;
    queueMicrotask(() => {
      this.claimScheduled = false;
      this.pump();
    });
  }

  /** Stores a success, with the others of this turn of the event loop; resolves once it is stored. */
  complete(completion: Completion): Promise<void> {
    return new Promise((resolve, reject) => {
      this.completions.push({ completion, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // After the I/O callbacks of this turn: what they ask for joins.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT) {
      const completions = this.completions.splice(0, MAX_COMPLETIONS);
      const freed = completions.length;
      const claim = this.wanted && this.slots.claimable() ? Math.max(0, this.slots.free() - this.reserved + freed) : 0;
      if (completions.length === 0 && claim === 0) return;
      // A failed claim is not retried at once: the next wake-up or poll asks again.
      if (claim > 0) this.wanted = false;
      this.send(completions, claim);
    }
  }

  private send(completions: ClaimWriter['completions'], claim: number): void {
    this.inFlight++;
    this.reserved += claim;
    this.write(
      completions.map((c) => c.completion),
      claim,
    )
      .then(
        (jobs) => {
          for (const c of completions) c.resolve();
          // A full claim: more may be due.
          if (claim > 0 && jobs.length >= claim) this.wanted = true;
          this.slots.claimed(jobs);
        },
        (err) => {
          for (const c of completions) c.reject(err);
          this.slots.failed(err);
        },
      )
      .catch((err) => this.slots.failed(err))
      .finally(() => {
        this.inFlight--;
        this.reserved -= claim;
        this.pump();
      });
  }
}
