import { parseArgs } from 'node:util';

/**
 * Reads `--name value` options as positive integers (and `--quick`, `--help`) from argv; an unknown
 * or malformed option stops the benchmark with a line that says which ones it accepts.
 */
export function readOptions<K extends string>(
  script: string,
  defaults: Record<K, number>,
  descriptions: Record<K, string>,
  quick: Partial<Record<K, number>>,
  flags: Record<string, string> = {},
): { values: Record<K, number>; quick: boolean; flags: Record<string, boolean> } {
  const names = Object.keys(defaults) as K[];
  const usage = [
    `usage: node --import tsx bench/${script} [options]`,
    ...names.map((n) => `  --${n} <n>`.padEnd(26) + `${descriptions[n]} (default ${defaults[n]}${quick[n] !== undefined ? `, --quick ${quick[n]}` : ''})`),
    '  --quick'.padEnd(26) + 'a short smoke run with smaller figures (not for the report)',
    ...Object.entries(flags).map(([f, d]) => `  --${f}`.padEnd(26) + d),
  ].join('\n');
  let parsed: { values: Record<string, string | boolean | undefined> };
  try {
    parsed = parseArgs({
      options: {
        ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
        ...Object.fromEntries(Object.keys(flags).map((f) => [f, { type: 'boolean' as const }])),
        quick: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  const isQuick = parsed.values.quick === true;
  const values = { ...defaults };
  for (const n of names) {
    if (isQuick && quick[n] !== undefined) values[n] = quick[n];
    const raw = parsed.values[n];
    if (raw === undefined) continue;
    // An option whose default is 0 means "leave it to the service", so 0 is a valid value there.
    const min = defaults[n] === 0 ? 0 : 1;
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < min) {
      console.error(`--${n}: expected a whole number >= ${min}, got ${JSON.stringify(raw)}\n${usage}`);
      process.exit(2);
    }
    values[n] = Number(raw);
  }
  const flagValues = Object.fromEntries(Object.keys(flags).map((f) => [f, parsed.values[f] === true]));
  return { values, quick: isQuick, flags: flagValues };
}
