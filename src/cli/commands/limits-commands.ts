import type { Command } from 'commander';
import { LIMIT_DEFINITIONS, type EffectiveLimit } from '../../ops/runtime-limits.ts';
import { withAccessOperations } from '../access-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';

function show(limits: EffectiveLimit[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(limits, null, 2)}\n`);
    return;
  }
  const rows = limits.map((l) => [l.name, l.unlimited ? 'unlimited' : l.value, l.source, l.source === 'runtime' ? l.default : null, l.env, l.updated_at, l.updated_by]);
  process.stdout.write(`${renderTable(['name', 'value', 'source', 'default', 'default from', 'updated_at', 'updated_by'], rows)}\n`);
}

/** `evalops limits show/set/reset`: runtime limits, picked up by every API process within seconds. */
export function registerLimitsCommands(program: Command): void {
  const limits = program
    .command('limits')
    .description('show and change runtime limits (rate limits, body and payload sizes, evaluation limits) without a restart')
    .addHelpText('after', `\nLimits:\n${LIMIT_DEFINITIONS.map((d) => `  ${d.name.padEnd(28)} ${d.meaning}${d.zeroIsUnlimited ? '; 0 = unlimited' : ''}`).join('\n')}\n`);

  limits
    .command('show')
    .description('effective limits: the runtime value when set, else the default from the environment')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withAccessOperations(configFromEnv(), async (ops) => show(await ops.showLimits(), o.json));
    });

  limits
    .command('set')
    .description('set one or more limits, e.g. `evalops limits set rate.write_per_minute=60 job.payload_bytes.sleep=1024`')
    .argument('<name=value...>', 'assignments')
    .option('--json', 'print the resulting limits as JSON')
    .action(async (assignments: string[], o: { json?: boolean }) => {
      const values: Record<string, string> = {};
      for (const a of assignments) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new CliError(`"${a}" is not name=value (e.g. rate.read_per_minute=600)`, EXIT.USAGE);
        values[a.slice(0, eq).trim()] = a.slice(eq + 1).trim();
      }
      await withAccessOperations(configFromEnv(), async (ops) => show(await ops.setLimits(values), o.json));
    });

  limits
    .command('reset')
    .description('drop runtime values so the defaults from the environment apply again')
    .argument('<name...>', 'limit names')
    .option('--json', 'print the resulting limits as JSON')
    .action(async (names: string[], o: { json?: boolean }) => {
      await withAccessOperations(configFromEnv(), async (ops) => show(await ops.resetLimits(names), o.json));
    });
}
