import type { Command } from 'commander';
import type { DatasetSnapshot } from '../../evals/dataset-service.ts';
import { configFromEnv } from '../cli-config.ts';
import { withEvalApi } from '../eval-api.ts';
import { pushDatasetFile } from '../eval-inputs.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';

const REMOTE = ['--remote <url>', 'an evalops server to use (default: this machine, on the configured database)'] as const;

/** `evalops dataset push/list`: content-addressed dataset snapshots. */
export function registerDatasetCommands(program: Command): void {
  const dataset = program.command('dataset').description('dataset snapshots: upload a JSONL or CSV file, list');

  dataset
    .command('push')
    .description('upload FILE (.jsonl or .csv, streamed); prints its data_snapshot_id (the same content always gives the same id)')
    .argument('<file>')
    .option('--name <name>', 'a label for the snapshot (default: the file name)')
    .option('--format <format>', 'jsonl or csv (default: from the file name)')
    .option(...REMOTE)
    .option('--json', 'print the snapshot as JSON')
    .action(async (file: string, o: { name?: string; format?: string; remote?: string; json?: boolean }) => {
      if (o.format !== undefined && o.format !== 'jsonl' && o.format !== 'csv') throw new CliError('--format takes jsonl or csv', EXIT.USAGE);
      const snapshot = await withEvalApi(configFromEnv(), o.remote, (api) => pushDatasetFile(api, file, { name: o.name, format: o.format as 'jsonl' | 'csv' | undefined }));
      if (o.json) process.stdout.write(`${JSON.stringify(snapshot, null, 2)}\n`);
      else process.stdout.write(`${snapshot.data_snapshot_id} (${snapshot.row_count} rows${snapshot.created ? '' : ', already stored'})\n`);
    });

  dataset
    .command('list')
    .description('snapshots, newest first')
    .option('--limit <n>', 'rows', '100')
    .option(...REMOTE)
    .option('--json', 'print JSON')
    .action(async (o: { limit: string; remote?: string; json?: boolean }) => {
      const { datasets } = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<{ datasets: DatasetSnapshot[] }>('GET', `/v1/datasets?limit=${encodeURIComponent(o.limit)}`));
      if (o.json) process.stdout.write(`${JSON.stringify(datasets, null, 2)}\n`);
      else process.stdout.write(`${renderTable(['data_snapshot_id', 'name', 'rows', 'bytes', 'created_at'], datasets.map((d) => [d.data_snapshot_id, d.name, d.row_count, d.byte_count, d.created_at]))}\n`);
    });
}
