#!/usr/bin/env node
import { Command } from 'commander';
import { EVALOPS_VERSION } from '../config/version.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { registerConfigCommand } from './commands/config-command.ts';
import { registerJobsCommands } from './commands/jobs-commands.ts';
import { registerMigrateCommands } from './commands/migrate-commands.ts';
import { registerServeCommand } from './commands/serve-command.ts';
import { registerSqlCommand } from './commands/sql-command.ts';

const program = new Command()
  .name('evalops')
  .description('Background jobs and reproducible LLM evaluations, operated by a runbook.')
  .version(EVALOPS_VERSION)
  .showHelpAfterError()
  .exitOverride();

registerServeCommand(program);
registerConfigCommand(program);
registerMigrateCommands(program);
registerSqlCommand(program);
registerJobsCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as { code?: string; exitCode?: number };
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(EXIT.OK);
  if (e.code?.startsWith('commander.')) process.exit(EXIT.USAGE);
  if (err instanceof CliError) {
    process.stderr.write(`evalops: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`evalops: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(EXIT.FAILURE);
}
