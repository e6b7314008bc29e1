/** A counting semaphore whose waiters give up after a while, or are turned away (at shutdown). */
export class Slots {
  private waiters: Array<(outcome: 'granted' | 'timeout' | 'refused') => void> = [];

  constructor(private free: number) {}

  /** Permits not taken. */
  get available(): number {
    return this.free;
  }

  /** A permit, or `timeout` after `waitMs` without one, or `refused` once `refuseWaiters` was called. */
  acquire(waitMs: number): Promise<'granted' | 'timeout' | 'refused'> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve('granted');
    }
    return new Promise((resolve) => {
      const waiter = (outcome: 'granted' | 'timeout' | 'refused') => {
        clearTimeout(timer);
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve('timeout');
      }, waitMs);
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next('granted');
    else this.free++;
  }

  refuseWaiters(): void {
    for (const w of this.waiters.splice(0)) w('refused');
  }
}
