import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The command .ci/run runs so that these tests find promtool (Debian's `prometheus` package ships it). */
export const PROMTOOL_INSTALL = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus';

/** Bounded well under the unit project's 30 s test timeout, so a hang reports itself as such. */
const PROMTOOL_TIMEOUT_MS = 20_000;

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** promtool from $PROMTOOL, /usr/bin/promtool or $PATH; undefined when none is there. */
export function findPromtool(): string | undefined {
  const candidates = [process.env.PROMTOOL, '/usr/bin/promtool', ...(process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'promtool'))];
  return candidates.find((c): c is string => !!c && executable(c));
}

/** promtool's path, or an error that says how to install it: these tests never skip. */
export function requirePromtool(): string {
  const found = findPromtool();
  if (!found) {
    throw new Error(
      `promtool was not found (looked at $PROMTOOL, /usr/bin/promtool and $PATH): .ci/run must install Debian's \`prometheus\` package, which ships promtool, with: ${PROMTOOL_INSTALL}`,
    );
  }
  return found;
}

export interface PromtoolResult {
  readonly status: number | null;
  readonly output: string;
}

/** Runs promtool with a time limit; the output joins stdout and stderr for assertion messages. */
export function runPromtool(args: readonly string[], cwd: string): PromtoolResult {
  const result = spawnSync(requirePromtool(), args, { cwd, encoding: 'utf8', timeout: PROMTOOL_TIMEOUT_MS, killSignal: 'SIGKILL' });
  if (result.error) throw new Error(`promtool ${args.join(' ')} did not finish: ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
