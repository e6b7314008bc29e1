import type { Command } from 'commander';
import { openDatabaseAccess } from '../database-access.ts';
import { configFromEnv } from '../cli-config.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { checkReadStatement, RefusedStatementError } from '../../db/read-statement-guard.ts';
import { renderCsv, renderTable } from '../table-output.ts';

/** `evalops sql "<query>"`: one read-only statement against the configured database. */
export function registerSqlCommand(program: Command): void {
  program
    .command('sql')
    .description('run one read statement (SELECT, WITH, TABLE, VALUES, EXPLAIN, SHOW) against the configured database as a read-only role and print a table (works while the server runs)')
    .argument('<query>', 'one read statement, e.g. the runbook\'s queries')
    .option('--json', 'print rows as JSON objects')
    .option('--csv', 'print CSV')
    .option('--timeout <ms>', 'statement timeout in milliseconds (the embedded database: the statement, after its snapshot opens)', '30000')
    .action(async (query: string, opts: { json?: boolean; csv?: boolean; timeout: string }) => {
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw new CliError('--timeout takes a whole number of milliseconds, at least 100', EXIT.USAGE);
      // Refused before any connection (the database side checks again): an answer in milliseconds.
      try {
        await checkReadStatement(query);
      } catch (err) {
        throw new CliError(err instanceof RefusedStatementError ? err.message : `query failed: ${(err as Error).message}`, EXIT.FAILURE);
      }
      const access = await openDatabaseAccess(configFromEnv());
      try {
        let result;
        try {
          result = await access.query(query, timeoutMs);
        } catch (err) {
          if (err instanceof CliError) throw err;
          if (err instanceof RefusedStatementError) throw new CliError(err.message, EXIT.FAILURE);
          throw new CliError(`query failed: ${(err as Error).message}`, EXIT.FAILURE);
        }
        if (opts.json) {
          const objects = result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c, row[i]])));
          process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`);
        } else if (opts.csv) {
          process.stdout.write(`${renderCsv(result.columns, result.rows)}\n`);
        } else {
          process.stdout.write(`${renderTable(result.columns, result.rows)}\n`);
        }
      } finally {
        await access.close();
      }
    });
}
