#!/usr/bin/env node
import { Command } from 'commander';
import { EVALOPS_VERSION } from '../config/version.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { registerConfigCommand } from './commands/config-command.ts';
import { registerJobsCommands } from './commands/jobs-commands.ts';
import { registerMigrateCommands } from './commands/migrate-commands.ts';
import { registerServeCommand } from './commands/serve-command.ts';
import { registerSqlCommand } from './commands/sql-command.ts';
import { registerQueueCommands } from './commands/queue-commands.ts';
import { registerWorkerCommand } from './commands/worker-command.ts';
import { registerWorkersCommands } from './commands/workers-commands.ts';
import { registerDatasetCommands } from './commands/dataset-commands.ts';
import { registerEvalCommands } from './commands/eval-commands.ts';
import { registerPromptCommands } from './commands/prompt-commands.ts';
import { registerApiKeyCommands } from './commands/apikey-commands.ts';
import { registerLimitsCommands } from './commands/limits-commands.ts';
import { registerSloCommands } from './commands/slo-commands.ts';
import { registerDoctorCommand } from './commands/doctor-commands.ts';
import { registerIncidentCommands } from './commands/incident-commands.ts';

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
registerWorkerCommand(program);
registerWorkersCommands(program);
registerQueueCommands(program);
registerPromptCommands(program);
registerDatasetCommands(program);
registerEvalCommands(program);
registerApiKeyCommands(program);
registerLimitsCommands(program);
registerDoctorCommand(program);
registerSloCommands(program);
registerIncidentCommands(program);

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
