import type { Command } from 'commander';
import type { EvaluationRun } from '../../evals/evaluation-service.ts';
import { checkRunFolder } from '../../evals/run-folder-check.ts';
import { RESULTS_FILE } from '../../evals/run-artifacts.ts';
import { configFromEnv } from '../cli-config.ts';
import { responseLines, withEvalApi } from '../eval-api.ts';
import { renderRunReport, waitForRun } from '../eval-report.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';
import { registerEvalRunCommand, reportRun } from './eval-run-command.ts';

const REMOTE = ['--remote <url>', 'an evalops server to use (default: this machine, on the configured database)'] as const;

const resultsHash = (run: EvaluationRun) => run.files?.find((f) => f.name === RESULTS_FILE)?.sha256 ?? null;

/** `evalops eval ...`: runs, re-runs, reproducibility checks and run folders (runbook section C). */
export function registerEvalCommands(program: Command): void {
  const evalCommand = program.command('eval').description('evaluation runs: run, rerun, verify, validate, list, show, compare, cancel, results');
  registerEvalRunCommand(evalCommand);

  evalCommand
    .command('rerun')
    .description('run RUN_ID again with the same inputs (replay by default: answers only from the response record) and wait for it')
    .argument('<run_id>')
    .option('--mode <live|replay>', 'replay (default) or live', 'replay')
    .option('--junit <file>', 'write JUnit XML for CI')
    .option(...REMOTE)
    .option('--no-progress', 'no progress output')
    .option('--json', 'print the finished run as JSON')
    .action(async (runId: string, o: { mode: string; junit?: string; remote?: string; progress: boolean; json?: boolean }) => {
      if (o.mode !== 'live' && o.mode !== 'replay') throw new CliError('--mode takes live or replay', EXIT.USAGE);
      await withEvalApi(configFromEnv(), o.remote, async (api) => {
        const rerun = await api.call<EvaluationRun>('POST', `/v1/evaluations/${encodeURIComponent(runId)}/rerun`, { mode: o.mode });
        process.stderr.write(`run ${rerun.run_id} (${o.mode} rerun of ${runId}) queued\n`);
        await reportRun(api, await waitForRun(api, rerun.run_id, { progress: o.progress }), o);
      });
    });

  evalCommand
    .command('verify')
    .description(
      `runbook C.4: replay RUN_ID (or compare with --against an existing rerun) and compare the sha256 of both results.jsonl; ` +
        `exit ${EXIT.OK} when identical, ${EXIT.NOT_REPRODUCIBLE} when not, ${EXIT.RUN_FAILED} when a run failed`,
    )
    .argument('<run_id>')
    .option('--against <run_id>', 'compare with this run instead of starting a replay')
    .option(...REMOTE)
    .option('--no-progress', 'no progress output')
    .action(async (runId: string, o: { against?: string; remote?: string; progress: boolean }) => {
      await withEvalApi(configFromEnv(), o.remote, async (api) => {
        const source = await api.call<EvaluationRun>('GET', `/v1/evaluations/${encodeURIComponent(runId)}`);
        if (source.status !== 'succeeded') throw new CliError(`run ${runId} is ${source.status}; only a succeeded run can be verified${source.error_message ? ` (${source.error_message})` : ''}`, EXIT.RUN_FAILED);
        let other: EvaluationRun;
        if (o.against) other = await api.call<EvaluationRun>('GET', `/v1/evaluations/${encodeURIComponent(o.against)}`);
        else {
          const rerun = await api.call<EvaluationRun>('POST', `/v1/evaluations/${encodeURIComponent(runId)}/rerun`, { mode: 'replay' });
          process.stderr.write(`replaying ${runId} as run ${rerun.run_id}\n`);
          other = await waitForRun(api, rerun.run_id, { progress: o.progress });
        }
        if (other.status !== 'succeeded') throw new CliError(`run ${other.run_id} is ${other.status}: ${other.error_message ?? 'no message'}`, EXIT.RUN_FAILED);
        const a = resultsHash(source);
        const b = resultsHash(other);
        process.stdout.write(`${RESULTS_FILE} of ${source.run_id} (${source.mode}): sha256 ${a}\n${RESULTS_FILE} of ${other.run_id} (${other.mode}): sha256 ${b}\n`);
        if (a !== null && a === b) process.stdout.write('reproduced: byte for byte\n');
        else {
          process.stdout.write(`NOT reproduced: the results differ; compare them with \`evalops eval compare ${source.run_id} ${other.run_id}\`\n`);
          process.exitCode = EXIT.NOT_REPRODUCIBLE;
        }
      });
    });

  evalCommand
    .command('validate')
    .description(`runbook C.1/C.2: check a run folder (the three files, run_metadata against its schema, results vs summary); exit ${EXIT.INVALID_RUN_FOLDER} when invalid`)
    .argument('<dir>')
    .option('--json', 'print the check as JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      const check = await checkRunFolder(dir);
      if (o.json) process.stdout.write(`${JSON.stringify(check, null, 2)}\n`);
      else {
        for (const f of check.files) process.stdout.write(`${f.present ? 'ok     ' : 'MISSING'} ${f.name}${f.bytes !== null ? ` (${f.bytes} bytes)` : ''}\n`);
        for (const p of check.partialFiles) process.stdout.write(`partial ${p} (left by an interrupted or failed run)\n`);
        for (const p of check.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(check.ok ? `valid: ${check.dir} (${check.cases} cases)\n` : `INVALID: ${check.dir}\n`);
      }
      if (!check.ok) process.exitCode = EXIT.INVALID_RUN_FOLDER;
    });

  evalCommand
    .command('list')
    .description('evaluation runs, newest first')
    .option('--status <s>', 'status or comma-separated statuses')
    .option('--limit <n>', 'rows', '20')
    .option(...REMOTE)
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; limit: string; remote?: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.status ? { status: o.status } : {}) });
      const page = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<{ runs: EvaluationRun[] }>('GET', `/v1/evaluations?${q}`));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        return;
      }
      const rows = page.runs.map((r) => {
        const s = r.summary as { cases?: number; pass_rate?: number | null } | null;
        return [r.run_id, r.status, r.prompt_version, r.model, r.mode, s?.cases ?? null, s?.pass_rate != null ? `${(s.pass_rate * 100).toFixed(1)}%` : '', r.created_at, r.error_message];
      });
      process.stdout.write(`${renderTable(['run_id', 'status', 'prompt_version', 'model', 'mode', 'cases', 'pass rate', 'created_at', 'error_message'], rows)}\n`);
    });

  evalCommand
    .command('show')
    .description('one run: summary table and run folder (or --json for everything: metadata, files with sha256, progress)')
    .argument('<run_id>')
    .option(...REMOTE)
    .option('--json', 'print JSON')
    .action(async (runId: string, o: { remote?: string; json?: boolean }) => {
      const run = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<EvaluationRun>('GET', `/v1/evaluations/${encodeURIComponent(runId)}`));
      process.stdout.write(o.json ? `${JSON.stringify(run, null, 2)}\n` : `${renderRunReport(run)}\n${run.run_dir ?? ''}\n`);
    });

  evalCommand
    .command('results')
    .description('results.jsonl of a run, one case per line (filterable)')
    .argument('<run_id>')
    .option('--failed', 'only failing (and errored) cases')
    .option('--passed', 'only passing cases')
    .option('--errors', 'only errored cases')
    .option('--limit <n>')
    .option(...REMOTE)
    .action(async (runId: string, o: { failed?: boolean; passed?: boolean; errors?: boolean; limit?: string; remote?: string }) => {
      const q = new URLSearchParams();
      if (o.failed) q.set('pass', 'false');
      if (o.passed) q.set('pass', 'true');
      if (o.errors) q.set('error', 'true');
      if (o.limit) q.set('limit', o.limit);
      await withEvalApi(configFromEnv(), o.remote, async (api) => {
        const res = await api.fetch(`/v1/evaluations/${encodeURIComponent(runId)}/results?${q}`);
        for await (const line of responseLines(res)) process.stdout.write(`${line}\n`);
      });
    });

  evalCommand
    .command('compare')
    .description('compare HEAD against BASE case by case: per-scorer deltas, a paired significance estimate, the flipped cases')
    .argument('<base_run_id>')
    .argument('<head_run_id>')
    .option(...REMOTE)
    .option('--json', 'print JSON')
    .action(async (base: string, head: string, o: { remote?: string; json?: boolean }) => {
      const q = new URLSearchParams({ base, head });
      type Comparison = {
        pairedCases: number;
        same_dataset: boolean;
        scorers: Array<{ scorer: string; baseMean: number | null; headMean: number | null; meanDelta: number | null; ci: { lower: number; upper: number } | null; mcnemar: { passToFail: number; failToPass: number; exactP: number } }>;
        flipped: Array<{ id: string; scorer: string; from: string; to: string }>;
        flippedTotal: number;
      };
      const c = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<Comparison>('GET', `/v1/evaluations/compare?${q}`));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
        return;
      }
      const f = (v: number | null | undefined) => (v === null || v === undefined ? '' : v.toFixed(3));
      process.stdout.write(`${c.pairedCases} paired cases${c.same_dataset ? '' : ' (different dataset snapshots: only cases with the same id are paired)'}\n`);
      const rows = c.scorers.map((s) => [s.scorer, f(s.baseMean), f(s.headMean), f(s.meanDelta), s.ci ? `[${f(s.ci.lower)}, ${f(s.ci.upper)}]` : '', s.mcnemar.passToFail, s.mcnemar.failToPass, f(s.mcnemar.exactP)]);
      process.stdout.write(`${renderTable(['scorer', 'base mean', 'head mean', 'delta', '95% CI', 'pass->fail', 'fail->pass', 'McNemar p'], rows)}\n`);
      for (const x of c.flipped.slice(0, 50)) process.stdout.write(`flipped ${x.id} (${x.scorer}): ${x.from} -> ${x.to}\n`);
      if (c.flippedTotal > 50) process.stdout.write(`... ${c.flippedTotal - 50} more flipped (--json for all)\n`);
    });

  evalCommand
    .command('cancel')
    .description('cancel a queued or running run')
    .argument('<run_id>')
    .option(...REMOTE)
    .action(async (runId: string, o: { remote?: string }) => {
      const run = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<EvaluationRun>('POST', `/v1/evaluations/${encodeURIComponent(runId)}/cancel`));
      process.stdout.write(`run ${run.run_id}: ${run.status}\n`);
    });
}
