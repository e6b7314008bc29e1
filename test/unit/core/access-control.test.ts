import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../../src/config/config.ts';
import { AppError } from '../../../src/errors.ts';
import { authMode, isLoopbackHost, routeAccess } from '../../../src/http/auth.ts';
import { checkInput, MAX_JSON_DEPTH } from '../../../src/http/input-guard.ts';
import { hashApiKey, hasScope, looksLikeApiKey, parseScopes } from '../../../src/ops/api-key-service.ts';
import { checkLimitValue, effectiveLimits, limitDefaults, limitDefinition } from '../../../src/ops/runtime-limits.ts';

const config = (env: Record<string, string> = {}) => loadConfig({ DATA_DIR: '/tmp/x', ...env });

describe('route access rules', () => {
  it('GET needs read; writes need the scope of their area; admin routes need admin; unknown writes fail closed', () => {
    expect(routeAccess('GET', '/v1/jobs/:id')).toBe('read');
    expect(routeAccess('HEAD', '/v1/evaluations')).toBe('read');
    expect(routeAccess('POST', '/v1/jobs')).toBe('jobs:write');
    expect(routeAccess('POST', '/v1/jobs/:id/cancel')).toBe('jobs:write');
    expect(routeAccess('POST', '/v1/prompts')).toBe('evals:write');
    expect(routeAccess('POST', '/v1/datasets')).toBe('evals:write');
    expect(routeAccess('POST', '/v1/evaluations/:id/rerun')).toBe('evals:write');
    expect(routeAccess('GET', '/v1/admin/api-keys')).toBe('admin');
    expect(routeAccess('PUT', '/v1/admin/limits')).toBe('admin');
    expect(routeAccess('POST', '/v1/something-new')).toBe('admin');
    expect(routeAccess('POST', '/v1/jobsx')).toBe('admin');
  });

  it('health, docs and CORS preflight are public; metrics and local routes have their own tokens', () => {
    for (const url of ['/health', '/health/detailed', '/docs', '/docs/json', '/docs/static/index.html']) expect(routeAccess('GET', url)).toBe('public');
    expect(routeAccess('OPTIONS', '*')).toBe('public');
    expect(routeAccess('GET', '/metrics')).toBe('metrics');
    expect(routeAccess('POST', '/local/sql')).toBe('local');
    expect(routeAccess('GET', '/healthz')).toBe('read');
  });

  it('loopback detection and the resulting mode', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
    expect(authMode(config(), 0)).toBe('open');
    expect(authMode(config(), 1)).toBe('keys');
    expect(authMode(config({ HOST: '0.0.0.0' }), 0)).toBe('keys');
    expect(authMode(config({ HOST: '0.0.0.0', AUTH_DISABLED: 'true' }), 3)).toBe('disabled');
  });
});

describe('API keys', () => {
  it('parses scopes, naming unknown ones; admin implies every scope', () => {
    expect(parseScopes('read, jobs:write')).toEqual(['read', 'jobs:write']);
    expect(parseScopes(['admin', 'read'])).toEqual(['read', 'admin']);
    expect(() => parseScopes('read,root')).toThrow(/"root" is not a scope; use read, jobs:write, evals:write, admin/);
    expect(() => parseScopes('')).toThrow(/at least one/);
    expect(hasScope(new Set(['admin']), 'evals:write')).toBe(true);
    expect(hasScope(new Set(['read']), 'jobs:write')).toBe(false);
  });

  it('recognises its key shape before any lookup; hashes with SHA-256', () => {
    expect(looksLikeApiKey(`evk_${'a'.repeat(43)}`)).toBe(true);
    expect(looksLikeApiKey(`evk_${'a'.repeat(42)}`)).toBe(false);
    expect(looksLikeApiKey(`sk-${'a'.repeat(44)}`)).toBe(false);
    expect(hashApiKey('evk_x')).toMatch(/^[0-9a-f]{64}$/);
  });
});

const TYPES = ['evaluation', 'noop', 'sleep'];

describe('runtime limits', () => {
  it('knows its limits, per-type payload limits included, and refuses others naming the list', () => {
    expect(limitDefinition('rate.read_per_minute').env).toBe('RATE_LIMIT_READ_PER_MINUTE');
    expect(limitDefinition('job.payload_bytes.sleep').name).toBe('job.payload_bytes.<type>');
    expect(() => limitDefinition('job.payload_bytes.')).toThrow(/is not a limit/);
    expect(() => limitDefinition('nope')).toThrow(/the limits are rate\.read_per_minute, rate\.write_per_minute/);
  });

  it('checks values against each range, naming it', () => {
    expect(checkLimitValue('rate.read_per_minute', '0', TYPES)).toBe(0);
    expect(checkLimitValue('body.max_bytes', 4096, TYPES)).toBe(4096);
    expect(() => checkLimitValue('body.max_bytes', 100, TYPES)).toThrow(/body\.max_bytes: 100 is not a whole number from 1024 to 536870912$/);
    expect(() => checkLimitValue('rate.write_per_minute', '1.5', TYPES)).toThrow(/\(0 = unlimited\)/);
    expect(() => checkLimitValue('eval.max_concurrent_runs', -1, TYPES)).toThrow(AppError);
  });

  it('takes a per-type limit only for a job type the service runs, naming the unknown name', () => {
    expect(checkLimitValue('job.payload_bytes.sleep', 5000, TYPES)).toBe(5000);
    for (const name of ['job.payload_bytes.__proto__', 'job.payload_bytes.constructor', 'job.payload_bytes.slep']) {
      expect(() => checkLimitValue(name, 5000, TYPES)).toThrow(new RegExp(`^"${name.replace(/\./g, '\\.')}" is not a limit: "[\\w]+" is not a job type; the job types are evaluation, noop, sleep$`));
    }
  });

  it('shows every limit with its source; runtime rows win over the environment', () => {
    const defaults = limitDefaults(config({ RATE_LIMIT_READ_PER_MINUTE: '100', JOB_PAYLOAD_LIMIT_BYTES: '5000' }));
    const rows = [
      { name: 'rate.read_per_minute', value: 7, updated_at: new Date(0), updated_by: 'cli:me' },
      { name: 'job.payload_bytes.sleep', value: 64, updated_at: new Date(0), updated_by: 'key:ops' },
    ];
    const shown = effectiveLimits(defaults, rows);
    expect(shown.find((l) => l.name === 'rate.read_per_minute')).toMatchObject({ value: 7, source: 'runtime', default: 100, updated_by: 'cli:me' });
    expect(shown.find((l) => l.name === 'rate.write_per_minute')).toMatchObject({ value: 600, source: 'default', env: 'RATE_LIMIT_WRITE_PER_MINUTE' });
    expect(shown.find((l) => l.name === 'job.payload_bytes.sleep')).toMatchObject({ value: 64, default: 5000 });
    expect(shown.find((l) => l.name === 'eval.max_cases_per_run')?.unlimited).toBe(false);
  });
});

describe('input guard', () => {
  it('refuses nesting deeper than MAX_JSON_DEPTH, without recursion', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => checkInput('body', deep)).toThrow(new RegExp(`over the limit of ${MAX_JSON_DEPTH}`));
    let ok: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = { a: ok };
    expect(() => checkInput('body', ok)).not.toThrow();
  });

  it('refuses NUL and unpaired surrogates in values and keys, naming where', () => {
    expect(() => checkInput('body', { payload: { s: 'a\u0000b' } })).toThrow(/^body\.payload\.s: contains a NUL character/);
    expect(() => checkInput('querystring', { q: '\ud800' })).toThrow(/unpaired UTF-16 surrogate/);
    expect(() => checkInput('body', { ['k\udc00']: 1 })).toThrow(/unpaired/);
    expect(() => checkInput('params', 'x\u0000')).toThrow(/NUL/);
    expect(() => checkInput('body', { ok: '😀 emoji pairs are fine', n: [1, 2, { x: null }] })).not.toThrow();
  });
});

describe('configuration of access control', () => {
  it('parses and describes the new variables, masking METRICS_TOKEN', () => {
    const c = config({ METRICS_TOKEN: 'm'.repeat(20), CORS_ORIGINS: 'https://a.example.com, http://localhost:3000', TRUST_PROXY: '2', AUTH_DISABLED: 'yes' });
    expect(c.access).toMatchObject({ authDisabled: true, metricsToken: 'm'.repeat(20), corsOrigins: ['https://a.example.com', 'http://localhost:3000'], trustProxy: 2 });
    expect(describeConfig(c).METRICS_TOKEN).toBe('***');
    expect(config({ TRUST_PROXY: '10.0.0.0/8,127.0.0.1' }).access.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(config().access).toMatchObject({ authDisabled: false, corsOrigins: undefined, trustProxy: false, authCacheTtlMs: 2000 });
  });

  it('rejects bad values without echoing a secret', () => {
    try {
      config({ METRICS_TOKEN: 'short-secret', CORS_ORIGINS: 'not an origin' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/METRICS_TOKEN: accepts a token of at least 16 characters/);
      expect(message).not.toContain('short-secret');
      expect(message).toMatch(/CORS_ORIGINS: accepts \* or a comma-separated list of origins/);
    }
  });
});
