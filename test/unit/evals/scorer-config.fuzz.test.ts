import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import { createProvider } from '../../../src/evals/providers/provider-factory.ts';
import { createScorers, parseScorerList } from '../../../src/evals/scorers/scorer-factory.ts';
import { hostileJson, mutatedScorer, scorerList, scorerOutput } from '../../helpers/scorer-arbitraries.ts';

/**
 * Properties over the scorer fields of an evaluation spec, without a server: validating and building
 * any generated scorer list either refuses it with an AppError of a 4xx status naming a field under
 * `scorers`, or yields scorers whose score() on any output up to 64 KiB returns (or throws an
 * AppError) within a bounded time. Judges are the built-in echo provider, which never leaves the
 * process; inline judges that would call the network are built, not scored.
 * EVALOPS_FUZZ_RUNS sets the runs (default 300).
 */

const RUNS = Number(process.env.EVALOPS_FUZZ_RUNS ?? 300);
/** Generous: a scorer needs milliseconds; this catches a hang or a quadratic blow-up, not a slow machine. */
const SCORE_BOUND_MS = 5_000;

const echo = createProvider({ type: 'echo' });

function expectRefusal(error: unknown, shown: string): void {
  expect(error, `a non-AppError escaped for ${shown}: ${String(error)}`).toBeInstanceOf(AppError);
  const app = error as AppError;
  expect(app.status, `${shown}: ${app.message}`).toBeGreaterThanOrEqual(400);
  expect(app.status, `${shown}: ${app.message}`).toBeLessThan(500);
  expect(app.message, shown).toMatch(/scorers/);
}

const show = (value: unknown) => {
  try {
    return JSON.stringify(value)?.slice(0, 400) ?? String(value);
  } catch {
    return String(value);
  }
};

describe('scorer config properties', () => {
  it('building any generated scorer list refuses it with a 4xx AppError naming scorers, or every scorer scores any output in bounded time', async () => {
    let built = 0;
    let refused = 0;
    let scored = 0;
    await fc.assert(
      fc.asyncProperty(scorerList(), fc.array(scorerOutput, { minLength: 1, maxLength: 2 }), hostileJson, async (list, outputs, expected) => {
        const shown = show(list);
        let scorers;
        try {
          const configs = parseScorerList(list, 'scorers');
          scorers = createScorers(configs, { resolveProvider: (name) => (name === 'run' || name === 'echo' ? echo : undefined) });
        } catch (error) {
          expectRefusal(error, shown);
          refused += 1;
          return;
        }
        built += 1;
        // Expected values come from dataset rows, that is from JSON.parse.
        const expectedValue = expected === undefined ? undefined : (JSON.parse(JSON.stringify(expected)) as unknown);
        const configs = parseScorerList(list, 'scorers');
        for (const [i, scorer] of scorers.entries()) {
          const config = configs[i]!;
          // An inline OpenAI-compatible judge would call its base_url: building it is what this property checks.
          if (config.type === 'llm_judge' && typeof config.provider === 'object' && config.provider.type !== 'echo') continue;
          for (const output of outputs) {
            const started = performance.now();
            try {
              const result = await scorer.score({ output, expected: expectedValue, vars: { text: 'case 1' } });
              expect(result.score, `${shown} on ${output.slice(0, 80)}`).toBeGreaterThanOrEqual(0);
              expect(result.score).toBeLessThanOrEqual(1);
              expect(typeof result.pass).toBe('boolean');
              expect(result.reason).toEqual(expect.any(String));
            } catch (error) {
              expect(error, `${shown} threw a non-AppError on an output of ${output.length} characters: ${String(error)}`).toBeInstanceOf(AppError);
            }
            const elapsed = performance.now() - started;
            expect(elapsed, `${shown} took ${Math.round(elapsed)} ms on an output of ${output.length} characters`).toBeLessThan(SCORE_BOUND_MS);
            scored += 1;
          }
        }
      }),
      { numRuns: RUNS },
    );
    process.stdout.write(`scorer config properties: ${built} lists built, ${refused} refused, ${scored} scorings\n`);
    expect(built).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  }, 120_000);

  it('one mutated scorer among valid ones is refused with the index of the bad one, or accepted', () => {
    fc.assert(
      fc.property(mutatedScorer(), fc.nat({ max: 2 }), (bad, at) => {
        const list: unknown[] = [{ name: 'first', type: 'exact' }, { name: 'second', type: 'contains', value: 'x' }];
        list.splice(at, 0, bad);
        try {
          parseScorerList(list, 'scorers');
        } catch (error) {
          expectRefusal(error, show(list));
          // Only the mutated scorer can be wrong (or clash by name with a valid one).
          expect((error as AppError).message, show(list)).toMatch(new RegExp(`scorers\\.${at}\\b|scorers\\.[0-2]\\.name`));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
