import { stringify } from 'yaml';
import { WINDOW_PLACEHOLDER, durationSeconds, type SloConfig, type SloDefinition } from '../obs/slo-config.ts';
import { ALERT_WINDOWS, BURN_RATE_ALERTS, type AlertSeverity, type BurnRateAlertSpec } from '../obs/slo-math.ts';

/**
 * Prometheus recording and alerting rules generated from slo.yaml, in Sloth's layout
 * (`slo:sli_error:ratio_rate5m` ..., `slo:objective:ratio`, page and ticket alerts), with labels
 * `slo` and `service`. The thresholds are the ones src/obs/slo-math.ts applies to database counts,
 * including the minimum number of events, so Prometheus and `evalops slo` fire on the same traffic.
 */

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly (RecordingRule | AlertingRule)[];
}

/** A Prometheus rule file (`rule_files:` entry). */
export interface RuleFile {
  readonly groups: readonly RuleGroup[];
}

/**
 * How long each alert's condition must hold before it fires. The short window already stops an
 * alert soon after errors stop; `for` only filters a single-evaluation blip (a scrape gap, a counter
 * reset). Two minutes keeps a page within the Workbook's detection time; a ticket can wait longer.
 */
export const ALERT_FOR: Readonly<Record<AlertSeverity, string>> = { page: '2m', ticket: '15m' };

/** `ApiAvailabilityPageBurn` for SLO `api-availability` and severity `page`. */
export function alertName(sloName: string, severity: AlertSeverity): string {
  const camel = sloName
    .split('-')
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  return `${camel}${severity === 'page' ? 'Page' : 'Ticket'}Burn`;
}

/** A query with its `{{window}}` placeholder replaced by a range such as `5m`. */
function atWindow(query: string, window: string): string {
  return query.split(WINDOW_PLACEHOLDER).join(window);
}

function selector(slo: SloDefinition, service: string): string {
  return `{slo="${slo.name}", service="${service}"}`;
}

/** Prints a ratio without float noise: 0.001, not 0.0010000000000000009. */
function num(x: number): string {
  return String(Number(x.toPrecision(12)));
}

function sliRecordings(slo: SloDefinition, labels: Record<string, string>, sel: string): RecordingRule[] {
  const rules: RecordingRule[] = [];
  for (const window of ALERT_WINDOWS) {
    const seconds = durationSeconds(window)!;
    // `or vector(0)`: with no bad event yet the error series does not exist, and the ratio would
    // be missing rather than 0.
    rules.push({
      record: `slo:sli_error:ratio_rate${window}`,
      expr: `(${atWindow(slo.sli.errorQuery, window)} or vector(0))\n/\n(${atWindow(slo.sli.totalQuery, window)})`,
      labels,
    });
    rules.push({ record: `slo:sli_events:increase${window}`, expr: `(${atWindow(slo.sli.totalQuery, window)}) * ${seconds}`, labels });
  }
  // The full window from 5m slices, so Prometheus never scans 28 days of raw samples; summing bad
  // and total separately weights each slice by its traffic (an average of ratios would not).
  rules.push({ record: 'slo:sli_bad_events:increase5m', expr: `(${atWindow(slo.sli.errorQuery, '5m')} or vector(0)) * 300`, labels });
  rules.push({
    record: `slo:sli_error:ratio_rate${slo.window}`,
    expr: `sum_over_time(slo:sli_bad_events:increase5m${sel}[${slo.window}])\n/\nsum_over_time(slo:sli_events:increase5m${sel}[${slo.window}])`,
    labels,
  });
  return rules;
}

function metaRecordings(slo: SloDefinition, labels: Record<string, string>, sel: string): RecordingRule[] {
  return [
    { record: 'slo:objective:ratio', expr: `vector(${num(slo.objective)})`, labels },
    { record: 'slo:error_budget:ratio', expr: `vector(${num(slo.errorBudget)})`, labels },
    { record: 'slo:time_period:days', expr: `vector(${num(slo.windowSeconds / 86_400)})`, labels },
    { record: 'slo:min_events:count', expr: `vector(${slo.minEvents})`, labels },
    { record: 'slo:current_burn_rate:ratio', expr: `slo:sli_error:ratio_rate5m${sel}\n/\nslo:error_budget:ratio${sel}`, labels },
    { record: 'slo:period_burn_rate:ratio', expr: `slo:sli_error:ratio_rate${slo.window}${sel}\n/\nslo:error_budget:ratio${sel}`, labels },
    { record: 'slo:period_error_budget_remaining:ratio', expr: `1 - slo:period_burn_rate:ratio${sel}`, labels },
  ];
}

/** One pair's condition: both windows above the threshold, each with enough events to count. */
function pairCondition(spec: BurnRateAlertSpec, slo: SloDefinition, sel: string): string {
  const threshold = `(${num(spec.burnRate)} * ${num(slo.errorBudget)})`;
  return [
    `  slo:sli_error:ratio_rate${spec.longWindow}${sel} > ${threshold}`,
    `  and slo:sli_error:ratio_rate${spec.shortWindow}${sel} > ${threshold}`,
    `  and slo:sli_events:increase${spec.longWindow}${sel} >= ${slo.minEvents}`,
    `  and slo:sli_events:increase${spec.shortWindow}${sel} >= ${slo.minEvents}`,
  ].join('\n');
}

function describePairs(specs: readonly BurnRateAlertSpec[]): string {
  return specs.map((s) => `${num(s.burnRate)}x over ${s.longWindow} and ${s.shortWindow}`).join(', or ');
}

function alertRule(slo: SloDefinition, severity: AlertSeverity, sel: string): AlertingRule {
  const specs = BURN_RATE_ALERTS.filter((s) => s.severity === severity);
  const expr = specs.map((s) => `(\n${pairCondition(s, slo, sel)}\n)`).join('\nor\n');
  const urgency = severity === 'page' ? 'fast' : 'steadily';
  return {
    alert: alertName(slo.name, severity),
    expr,
    for: ALERT_FOR[severity],
    labels: { severity, runbook_section: slo.runbookSection },
    annotations: {
      summary: `${slo.name} is burning its error budget ${urgency} (${severity})`,
      description:
        `Error ratio above the burn-rate threshold: ${describePairs(specs)} ` +
        `(objective ${num(slo.objectivePercent)}% over ${slo.window}, at least ${slo.minEvents} events per window). ` +
        `Run \`evalops doctor\` and follow runbook section ${slo.runbookSection}.`,
      runbook_url: slo.runbookUrl,
      slo_doc: `docs/slo.md#${slo.name}`,
    },
  };
}

/** The rule groups for every SLO in the configuration: one group each, evaluated in order. */
export function generateSloRules(config: SloConfig): RuleFile {
  // One group per SLO, not Sloth's three: rules of a group run in order at the same timestamp, so
  // the alerts read the ratios recorded in the same evaluation rather than the previous one.
  const groups = config.slos.map((slo): RuleGroup => {
    const labels = { slo: slo.name, service: config.service };
    const sel = selector(slo, config.service);
    return {
      name: `${config.service}-slo-${slo.name}`,
      rules: [
        ...sliRecordings(slo, labels, sel),
        ...metaRecordings(slo, labels, sel),
        alertRule(slo, 'page', sel),
        alertRule(slo, 'ticket', sel),
      ],
    };
  });
  return { groups };
}

/** The rule file as YAML, ready for `rule_files:` (what `evalops slo rules` prints). */
export function renderSloRulesYaml(config: SloConfig): string {
  const header =
    `# Generated by \`evalops slo rules\` from ${config.source}. Do not edit by hand:\n` +
    '# change slo.yaml and generate again (docs/slo.md says how).\n';
  return header + stringify(generateSloRules(config), { lineWidth: 0, aliasDuplicateObjects: false });
}
