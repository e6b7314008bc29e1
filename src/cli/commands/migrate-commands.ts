import type { Command } from 'commander';
import { openDatabaseAccess } from '../database-access.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';

/** `evalops migrate up | current | status`. */
export function registerMigrateCommands(program: Command): void {
  const migrate = program.command('migrate').description('database migrations (Kysely Migrator)');

  migrate
    .command('up')
    .description('apply every pending migration')
    .action(async () => {
      const access = await openDatabaseAccess(configFromEnv());
      try {
        const result = await access.migrateUp();
        for (const name of result.applied) process.stdout.write(`applied ${name}\n`);
        if (result.error) throw new CliError(`migration ${result.failed ?? '?'} failed: ${result.error.message}`, EXIT.FAILURE);
        const status = await access.migrationStatus();
        process.stdout.write(`${result.applied.length ? '' : 'nothing to apply: '}database at head ${status.head} (${access.location})\n`);
      } finally {
        await access.close();
      }
    });

  migrate
    .command('current')
    .description(`print the applied head; exit ${EXIT.OK} at head, ${EXIT.MIGRATIONS_PENDING} pending, ${EXIT.CANNOT_CONNECT} cannot connect, ${EXIT.DATABASE_AHEAD} database ahead of this version`)
    .action(async () => {
      const access = await openDatabaseAccess(configFromEnv());
      try {
        const s = await access.migrationStatus();
        process.stdout.write(`current: ${s.current ?? '(none)'}\nhead:    ${s.head}\ndatabase: ${access.location}\n`);
        if (s.unknown.length) {
          process.stdout.write(`the database has migrations this version does not know: ${s.unknown.join(', ')}; a newer evalops migrated it\n`);
          process.exitCode = EXIT.DATABASE_AHEAD;
        } else if (s.pending.length) {
          process.stdout.write(`${s.pending.length} pending: ${s.pending.join(', ')}; run \`npx evalops migrate up\`\n`);
          process.exitCode = EXIT.MIGRATIONS_PENDING;
        } else {
          process.stdout.write('at head: no migration pending\n');
        }
      } finally {
        await access.close();
      }
    });

  migrate
    .command('status')
    .description('every migration, applied or pending, with when it was applied')
    .action(async () => {
      const access = await openDatabaseAccess(configFromEnv());
      try {
        const s = await access.migrationStatus();
        const rows = s.migrations.map((m) => [m.name, m.applied ? 'applied' : 'pending', m.executedAt]);
        for (const name of s.unknown) rows.push([name, 'unknown to this version', null]);
        process.stdout.write(`${renderTable(['migration', 'state', 'applied_at'], rows)}\n`);
      } finally {
        await access.close();
      }
    });
}
