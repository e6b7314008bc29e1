import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/config.ts';
import { loadSloConfig, SloConfigError, type SloConfig } from '../../obs/slo-config.ts';
import { measureSlos, type SloStatusReport } from '../../ops/slo-measure.ts';
import { formatSloReports } from '../../ops/slo-report-text.ts';
import { renderSloRulesYaml } from '../../ops/slo-rules.ts';
import { apiCall } from '../api-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { openDatabaseAccess } from '../database-access.ts';
import { CliError, EXIT } from '../exit-codes.ts';

/** Bound on each SLI query (they scan up to the SLO's full window). */
const QUERY_TIMEOUT_MS = 30_000;

/** SLO_CONFIG (or the built-in defaults); a bad file ends the command with the file and field named. */
export async function sloConfigFor(config: Config): Promise<SloConfig> {
  try {
    return await loadSloConfig(config.slo.configPath);
  } catch (err) {
    if (err instanceof SloConfigError) throw new CliError(`SLO_CONFIG: ${err.message}`, EXIT.CONFIG);
    throw err;
  }
}

/** Measures every SLO from the configured database (directly, or through the server holding the embedded one). */
export async function measureFromDatabase(config: Config, slo: SloConfig): Promise<SloStatusReport> {
  const access = await openDatabaseAccess(config);
  try {
    return await measureSlos((text) => access.read(text, QUERY_TIMEOUT_MS), slo);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const message = (err as Error).message;
    if (/relation "request_counts" does not exist/.test(message)) throw new CliError('this database has no request_counts table yet: run `npx evalops migrate up` first', EXIT.MIGRATIONS_PENDING);
    throw new CliError(`cannot measure the SLOs: ${message}`, EXIT.FAILURE);
  } finally {
    await access.close();
  }
}

/** `evalops slo` and `evalops slo rules`. */
export function registerSloCommands(program: Command): void {
  const slo = program
    .command('slo')
    .description('each SLO measured now: SLI over 5m, 30m, 1h, 6h, 3d and the full window, error budget left, burn rates, which alert would fire (docs/slo.md)')
    .option('--url <url>', 'ask this evalops API (GET /v1/slo) instead of reading the configured database')
    .option('--json', 'print JSON (what GET /v1/slo answers)')
    .action(async (o: { url?: string; json?: boolean }) => {
      const config = configFromEnv();
      const report = o.url
        ? await apiCall<SloStatusReport>(o.url.replace(/\/+$/, ''), 'GET', '/v1/slo')
        : await measureFromDatabase(config, await sloConfigFor(config));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      process.stdout.write(`SLOs of ${report.service} from ${report.source}, measured ${report.measured_at}\n\n`);
      process.stdout.write(formatSloReports(report.slos.map((s) => s.report)));
      const firing = report.slos.filter((s) => s.report.firing !== 'none');
      for (const s of firing) process.stdout.write(`\n${s.name}: ${s.report.firing.toUpperCase()} alert would fire now; follow ${s.runbook_url} (\`evalops doctor\` runs its checks)\n`);
    });

  slo
    .command('rules')
    .description('Prometheus recording and alerting rules generated from the SLO definitions (check them with `promtool check rules`)')
    .option('-o, --output <file>', 'write the rules to this file instead of stdout')
    .action(async (o: { output?: string }) => {
      const yaml = renderSloRulesYaml(await sloConfigFor(configFromEnv()));
      if (o.output) {
        writeFileSync(o.output, yaml);
        process.stderr.write(`wrote ${o.output}; check it with \`promtool check rules ${o.output}\` and list it under rule_files: in prometheus.yml\n`);
      } else process.stdout.write(yaml);
    });
}
