import { fmt, median, note } from './report.ts';

/** One side of a jobs/s comparison. */
export interface Contender {
  name: string;
  /** Runs `n` jobs to completion; jobs per second. */
  run(n: number, counted: boolean): Promise<number>;
}

/** Warms every contender up, then runs alternating rounds (A B C, C B A, ...); the median jobs/s of each. */
export async function alternatingRounds(
  contenders: Contender[],
  opts: { warmup: number; jobs: number; rounds: number; nameWidth: number },
): Promise<Map<Contender, number>> {
  for (const c of contenders) await c.run(opts.warmup, false);
  note(`warmed up (${opts.warmup} jobs each)`);
  const figures = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    const order = round % 2 === 1 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const jobsPerSec = await c.run(opts.jobs, true);
      figures.get(c)!.push(jobsPerSec);
      note(`round ${round}: ${c.name.padEnd(opts.nameWidth)} ${fmt(jobsPerSec).padStart(7)} jobs/s`);
    }
  }
  return new Map(contenders.map((c) => [c, median(figures.get(c)!)]));
}
