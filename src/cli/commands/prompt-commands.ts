import type { Command } from 'commander';
import type { PromptSummary, PromptVersion } from '../../evals/prompt-service.ts';
import { configFromEnv } from '../cli-config.ts';
import { withEvalApi } from '../eval-api.ts';
import { pushPromptFile } from '../eval-inputs.ts';
import { renderTable } from '../table-output.ts';

const REMOTE = ['--remote <url>', 'an evalops server to use (default: this machine, on the configured database)'] as const;

/** `evalops prompt push/list/show`: versioned prompts kept in git. */
export function registerPromptCommands(program: Command): void {
  const prompt = program.command('prompt').description('versioned prompts: push a YAML/JSON file as the next version, list, show');

  prompt
    .command('push')
    .description('store FILE (YAML or JSON: name, messages, params) as the next version of its prompt; an unchanged file returns the latest version')
    .argument('<file>')
    .option(...REMOTE)
    .option('--json', 'print the stored version as JSON')
    .action(async (file: string, o: { remote?: string; json?: boolean }) => {
      const stored = await withEvalApi(configFromEnv(), o.remote, (api) => pushPromptFile(api, file));
      if (o.json) process.stdout.write(`${JSON.stringify(stored, null, 2)}\n`);
      else process.stdout.write(`${stored.prompt_version}${stored.created ? '' : ' (unchanged: the latest version already has this content)'}\n`);
    });

  prompt
    .command('list')
    .description('every prompt with its latest version')
    .option(...REMOTE)
    .option('--json', 'print JSON')
    .action(async (o: { remote?: string; json?: boolean }) => {
      const { prompts } = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<{ prompts: PromptSummary[] }>('GET', '/v1/prompts'));
      if (o.json) process.stdout.write(`${JSON.stringify(prompts, null, 2)}\n`);
      else process.stdout.write(`${renderTable(['name', 'latest', 'versions', 'updated_at'], prompts.map((p) => [p.name, p.prompt_version, p.versions, p.updated_at]))}\n`);
    });

  prompt
    .command('show')
    .description('one version (name@N) or the latest (name), as JSON')
    .argument('<ref>')
    .option(...REMOTE)
    .action(async (ref: string, o: { remote?: string }) => {
      const version = await withEvalApi(configFromEnv(), o.remote, (api) => api.call<PromptVersion>('GET', `/v1/prompts/${encodeURIComponent(ref)}`));
      process.stdout.write(`${JSON.stringify(version, null, 2)}\n`);
    });
}
