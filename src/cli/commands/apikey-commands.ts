import type { Command } from 'commander';
import { SCOPES } from '../../ops/api-key-service.ts';
import { withAccessOperations } from '../access-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { renderTable } from '../table-output.ts';

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

/** `evalops apikey create/list/revoke`: on PostgreSQL directly, or through the server holding the embedded database. */
export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('create, list and revoke API keys (works while the server runs)');

  apikey
    .command('create')
    .description('create a key and print it once: only its hash is stored')
    .requiredOption('--name <name>', 'a name for the key (letters, digits, . _ -), shown in audit lines')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')} (admin implies all)`)
    .option('--json', 'print the key and its record as JSON')
    .action(async (o: { name: string; scopes: string; json?: boolean }) => {
      await withAccessOperations(configFromEnv(), async (ops) => {
        const { key, info } = await ops.createKey(o.name, o.scopes.split(','));
        if (o.json) return print({ ...info, key });
        // The key alone on stdout (KEY=$(evalops apikey create ...) works); the rest on stderr.
        process.stderr.write(`created API key "${info.name}" (id ${info.key_id}, scopes ${info.scopes.join(',')})\n`);
        process.stdout.write(`${key}\n`);
        process.stderr.write('store it now: it is not shown again (evalops keeps only its SHA-256). Clients send it as Authorization: Bearer <key>.\n');
      });
    });

  apikey
    .command('list')
    .description('keys with their prefix, scopes and last use (never the keys)')
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(async (o: { all?: boolean; json?: boolean }) => {
      await withAccessOperations(configFromEnv(), async (ops) => {
        const keys = await ops.listKeys(Boolean(o.all));
        if (o.json) return print(keys);
        const columns = ['name', 'key_id', 'prefix', 'scopes', 'created_at', 'last_used_at', ...(o.all ? ['revoked_at'] : [])];
        const rows = keys.map((k) => [k.name, k.key_id, `${k.prefix}…`, k.scopes.join(','), k.created_at, k.last_used_at, ...(o.all ? [k.revoked_at] : [])]);
        process.stdout.write(`${renderTable(columns, rows)}\n`);
      });
    });

  apikey
    .command('revoke')
    .description('revoke a key by name or id; every API process refuses it from its next request')
    .argument('<name-or-id>', 'the key name or key id')
    .option('--json', 'print the revoked key as JSON')
    .action(async (nameOrId: string, o: { json?: boolean }) => {
      await withAccessOperations(configFromEnv(), async (ops) => {
        const info = await ops.revokeKey(nameOrId);
        if (o.json) return print(info);
        process.stdout.write(`revoked API key "${info.name}" (id ${info.key_id}, ${info.prefix}…)\n`);
      });
    });
}
