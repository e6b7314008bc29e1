import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/config.ts';
import { AppError } from '../../errors.ts';
import { durationSeconds } from '../../obs/slo-config.ts';
import { OUTPUT_FORMATS, type OutputFormat } from '../../ops/incident-fields.ts';
import { type EndRequest, IncidentService, type IncidentView, type StartRequest, type TimelineEvent, type UpdateRequest } from '../../ops/incident-service.ts';
import { type IncidentMessage, renderIncidentMessage } from '../../ops/incident-templates.ts';
import { type Postmortem, renderPostmortem } from '../../ops/postmortem-template.ts';
import { cliActor } from '../access-client.ts';
import { configFromEnv } from '../cli-config.ts';
import { type DatabaseAccess, openDatabaseAccess } from '../database-access.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../table-output.ts';
import { sloConfigFor } from './slo-commands.ts';

/** What the incident commands do, on the database directly or through the server holding the embedded one. */
interface IncidentOperations {
  start(input: StartRequest): Promise<{ incident: IncidentView; message: IncidentMessage }>;
  update(input: UpdateRequest): Promise<{ incident: IncidentView; message: IncidentMessage }>;
  end(input: EndRequest): Promise<{ incident: IncidentView; message: IncidentMessage & { postmortemDue: { kst: string } }; postmortem: Postmortem }>;
  list(): Promise<IncidentView[]>;
  show(id: string | undefined): Promise<{ incident: IncidentView; timeline: TimelineEvent[] }>;
}

async function withIncidents<T>(config: Config, body: (ops: IncidentOperations) => Promise<T>): Promise<T> {
  const access = await openDatabaseAccess(config);
  try {
    return await body(await operations(access, config));
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (err instanceof AppError) throw new CliError(err.message, err.code === 'NOT_FOUND' ? EXIT.FAILURE : err.status >= 500 ? EXIT.CANNOT_CONNECT : EXIT.FAILURE);
    const message = (err as Error).message;
    if (/relation "incidents" does not exist/.test(message)) throw new CliError('this database has no incidents table yet: run `npx evalops migrate up` first', EXIT.MIGRATIONS_PENDING);
    throw new CliError(message, EXIT.FAILURE);
  } finally {
    await access.close();
  }
}

async function operations(access: DatabaseAccess, config: Config): Promise<IncidentOperations> {
  if (access.db) {
    const service = new IncidentService({ db: access.db, read: (text) => access.read(text, 30_000), slo: await sloConfigFor(config) });
    return {
      start: (input) => service.start(input),
      update: (input) => service.update(input),
      end: (input) => service.end(input),
      list: () => service.list(),
      show: (id) => service.show(id),
    };
  }
  const call = access.callLocal!;
  return {
    start: (input) => call('POST', '/local/incidents/start', input),
    update: (input) => call('POST', '/local/incidents/update', input),
    end: (input) => call('POST', '/local/incidents/end', input),
    list: async () => (await call<{ incidents: IncidentView[] }>('GET', '/local/incidents')).incidents,
    show: (id) => call('GET', `/local/incidents/show${id ? `?id=${encodeURIComponent(id)}` : ''}`),
  };
}

const collect = (value: string, previous: string[]) => [...previous, value];

function formatOf(value: string): OutputFormat {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) throw new CliError(`--format: accepts ${OUTPUT_FORMATS.join(', ')} (got "${value}")`, EXIT.USAGE);
  return value as OutputFormat;
}

function windowOf(value: string): number {
  const seconds = durationSeconds(value);
  if (seconds === undefined || seconds < 60) throw new CliError(`--window: accepts a duration of at least a minute such as 15m, 1h (got "${value}")`, EXIT.USAGE);
  return seconds;
}

/** `item | owner | YYYY-MM-DD`. */
function preventionItem(value: string): { item: string; owner: string; due: string } {
  const parts = value.split('|').map((p) => p.trim());
  if (parts.length !== 3 || parts.some((p) => p === '')) throw new CliError(`--prevention: write "item | owner | YYYY-MM-DD" (got "${value}")`, EXIT.USAGE);
  return { item: parts[0]!, owner: parts[1]!, due: parts[2]! };
}

/** Writes `content` to `file`, or to `file-2.md`, `-3`, … when it exists: a postmortem being edited is never overwritten. */
function writeNewFile(file: string, content: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  const ext = path.extname(file);
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? file : `${file.slice(0, file.length - ext.length)}-${n}${ext}`;
    try {
      writeFileSync(candidate, content, { flag: 'wx' });
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
    }
  }
}

const FORMAT_OPTION = ['--format <format>', `output: ${OUTPUT_FORMATS.join(', ')}`, 'markdown'] as const;

/** `evalops incident start|update|end|list|show`: the runbook's communication templates, filled in from measured figures and kept with their timeline. */
export function registerIncidentCommands(program: Command): void {
  const incident = program.command('incident').description("incidents: the runbook's start/update/end messages with measured impact, stored with their timeline; `end` writes the postmortem skeleton");

  incident
    .command('start')
    .description('open an incident and print its start message: time in KST, impact measured over --window (API error ratio, p99 latency, job and evaluation failure ratios), scope, mitigation, next update at +30 min')
    .requiredOption('--severity <P1|P2>', 'P1 or P2')
    .requiredOption('--summary <text>', 'what is wrong, in one line')
    .option('--affected <text>', 'an affected endpoint or function (repeatable; default: where the measured failures are)', collect, [])
    .option('--mitigation <text>', 'what was done so far (repeatable)', collect, [])
    .option('--window <duration>', 'measure the impact over this recent window', '30m')
    .option(...FORMAT_OPTION)
    .action(async (o: { severity: string; summary: string; affected: string[]; mitigation: string[]; window: string; format: string }) => {
      const format = formatOf(o.format);
      const input = { severity: o.severity.toUpperCase() as 'P1', summary: o.summary, affected: o.affected, mitigation: o.mitigation, window_seconds: windowOf(o.window), actor: cliActor() };
      const { incident: inc, message } = await withIncidents(configFromEnv(), (ops) => ops.start(input));
      process.stdout.write(renderIncidentMessage(message, format));
      process.stderr.write(`incident ${inc.id} opened; next: \`evalops incident update --id ${inc.id} --progress "..."\` by ${(message as { nextUpdate?: { kst: string } }).nextUpdate?.kst ?? '+30 min'}\n`);
    });

  incident
    .command('update')
    .description('add an update to an open incident (the only open one unless --id): phase, progress, impact measured again, mitigation so far, next update at +30 min')
    .option('--id <id>', 'the incident (INC-12 or 12); default: the only open incident')
    .requiredOption('--progress <text>', 'what changed since the last message')
    .option('--phase <phase>', 'investigating, identified or monitoring', 'investigating')
    .option('--affected <text>', 'replaces the affected endpoints or functions (repeatable)', collect, [])
    .option('--mitigation <text>', 'mitigation applied since the last message (repeatable; added to the list)', collect, [])
    .option('--window <duration>', 'measure the impact over this recent window', '30m')
    .option(...FORMAT_OPTION)
    .action(async (o: { id?: string; progress: string; phase: string; affected: string[]; mitigation: string[]; window: string; format: string }) => {
      const format = formatOf(o.format);
      const input: UpdateRequest = {
        ...(o.id ? { id: o.id } : {}),
        progress: o.progress,
        phase: o.phase as 'investigating',
        ...(o.affected.length ? { affected: o.affected } : {}),
        mitigation: o.mitigation,
        window_seconds: windowOf(o.window),
        actor: cliActor(),
      };
      const { message } = await withIncidents(configFromEnv(), (ops) => ops.update(input));
      process.stdout.write(renderIncidentMessage(message, format));
    });

  incident
    .command('end')
    .description('resolve an open incident, print its end message and write the postmortem skeleton (due 24 h after the end for P1, 3 business days in KST for P2)')
    .option('--id <id>', 'the incident (INC-12 or 12); default: the only open incident')
    .requiredOption('--root-cause <text>', 'the root cause, in one line')
    .requiredOption('--resolution <text>', 'how service was recovered or mitigated')
    .option('--prevention <item|owner|date>', 'a prevention item as "item | owner | YYYY-MM-DD" (repeatable)', collect, [])
    .option('--holiday <date>', 'a Seoul date that is not a business day, for a P2 due date (repeatable)', collect, [])
    .option('--postmortem <file>', 'where to write the postmortem skeleton (Markdown)', '')
    .option(...FORMAT_OPTION)
    .action(async (o: { id?: string; rootCause: string; resolution: string; prevention: string[]; holiday: string[]; postmortem: string; format: string }) => {
      const format = formatOf(o.format);
      const input: EndRequest = {
        ...(o.id ? { id: o.id } : {}),
        root_cause: o.rootCause,
        resolution: o.resolution,
        prevention: o.prevention.map(preventionItem),
        holidays: o.holiday,
        actor: cliActor(),
      };
      const { incident: inc, message, postmortem } = await withIncidents(configFromEnv(), (ops) => ops.end(input));
      const file = writeNewFile(path.resolve(o.postmortem || path.join('postmortems', `${inc.id}.md`)), renderPostmortem(postmortem, 'markdown'));
      process.stdout.write(renderIncidentMessage(message, format));
      process.stderr.write(`postmortem skeleton written to ${file}; due ${message.postmortemDue.kst} (${postmortem.dueRule})\n`);
    });

  incident
    .command('list')
    .description('incidents, newest first')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const incidents = await withIncidents(configFromEnv(), (ops) => ops.list());
      if (o.json) {
        process.stdout.write(`${JSON.stringify(incidents, null, 2)}\n`);
        return;
      }
      const rows = incidents.map((i) => [i.id, i.severity, i.status, i.phase, i.started_at.kst, i.ended_at?.kst ?? '', i.postmortem_due_at?.kst ?? '', i.summary]);
      process.stdout.write(`${renderTable(['id', 'severity', 'status', 'phase', 'started', 'ended', 'postmortem due', 'summary'], rows)}\n`);
    });

  incident
    .command('show')
    .description('one incident (the latest by default) and its timeline: every message as it was sent')
    .argument('[id]', 'INC-12 or 12')
    .option(...FORMAT_OPTION)
    .action(async (id: string | undefined, o: { format: string }) => {
      const format = formatOf(o.format);
      const shown = await withIncidents(configFromEnv(), (ops) => ops.show(id));
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      const { incident: inc, timeline } = shown;
      process.stdout.write(`${inc.id} ${inc.severity} ${inc.status} (${inc.phase}): ${inc.summary}\n`);
      process.stdout.write(`started ${inc.started_at.kst}${inc.ended_at ? `, ended ${inc.ended_at.kst}` : ''}${inc.postmortem_due_at ? `, postmortem due ${inc.postmortem_due_at.kst}` : ''}\n\ntimeline (KST):\n`);
      for (const e of timeline) process.stdout.write(`- ${e.at.kst} ${e.kind}: ${e.summary}${e.actor ? ` (${e.actor})` : ''}\n`);
      for (const e of timeline) process.stdout.write(`\n${renderIncidentMessage(e.message as IncidentMessage, format)}`);
    });
}
