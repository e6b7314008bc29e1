import type { Command } from 'commander';
import { describeConfig } from '../../config/config.ts';
import { configFromEnv } from '../cli-config.ts';

/** `evalops config`: the effective configuration, passwords masked. */
export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('print the effective configuration (passwords in URLs masked)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const described = describeConfig(configFromEnv());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(described, null, 2)}\n`);
        return;
      }
      const width = Math.max(...Object.keys(described).map((k) => k.length));
      for (const [key, value] of Object.entries(described)) process.stdout.write(`${key.padEnd(width)}  ${value ?? '(unset)'}\n`);
    });
}
