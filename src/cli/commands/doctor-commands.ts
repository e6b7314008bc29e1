import type { Command } from 'commander';
import { runDoctor } from '../../ops/doctor.ts';
import { formatDoctorReport } from '../../ops/doctor-text.ts';
import { apiBaseUrl } from '../api-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { openDatabaseAccess } from '../database-access.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { sloConfigFor } from './slo-commands.ts';

/** Bound on each of the doctor's database queries. */
const QUERY_TIMEOUT_MS = 15_000;

const whole = (name: string, min: number, max: number) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new CliError(`${name}: accepts a whole number from ${min} to ${max} (got "${value}")`, EXIT.USAGE);
  return Number(value);
};

/** `evalops doctor`: the runbook's checks against a live deployment. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      "run the runbook (docs/runbook.md) against a live deployment: common first checks, then sections A (API availability), B (jobs) and C (evaluation runs); " +
        `each finding names its section, evidence and next step. Reads only (except --replay). Exit ${EXIT.OK} when nothing needs action, ${EXIT.ACTION_NEEDED} when something does`,
    )
    .option('--url <url>', 'the API to check (default EVALOPS_URL, else HOST:PORT); the database, Redis and MLflow come from this environment')
    .option('--json', 'print the report as JSON')
    .option('-v, --verbose', 'show the evidence of passing checks too')
    .option('--replay', 'C.4: re-run the latest succeeded evaluation run in replay mode through the API and compare its results byte for byte (adds one run)')
    .option('--replay-timeout <ms>', 'how long the replay may take', whole('--replay-timeout', 1000, 3_600_000), 120_000)
    .option('--timeout <ms>', 'bound on each probe', whole('--timeout', 100, 60_000), 3000)
    .action(async (o: { url?: string; json?: boolean; verbose?: boolean; replay?: boolean; replayTimeout: number; timeout: number }) => {
      const config = configFromEnv();
      const slo = await sloConfigFor(config);
      const report = await runDoctor({
        url: apiBaseUrl(config, o.url),
        config,
        slo,
        timeoutMs: o.timeout,
        apiKey: process.env.EVALOPS_API_KEY || undefined,
        replay: { enabled: o.replay ?? false, timeoutMs: o.replayTimeout },
        async openDatabase() {
          const access = await openDatabaseAccess(config);
          return {
            read: (text: string) => access.read(text, QUERY_TIMEOUT_MS),
            migrationStatus: () => access.migrationStatus(),
            location: access.location,
            via: access.via,
            close: () => access.close(),
          };
        },
      });
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report, { verbose: o.verbose ?? false }));
      if (report.action_needed) process.exitCode = EXIT.ACTION_NEEDED;
    });
}
