import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_METADATA_SCHEMA, resolveCommitSha, validateRunMetadata, type RunMetadata } from '../../../src/evals/run-metadata.ts';

const valid: RunMetadata = {
  schema_version: 1,
  run_id: 'run_01',
  commit_sha: '0123456789abcdef0123456789abcdef01234567',
  git_dirty: false,
  prompt_version: 'qa-prompt@3',
  data_snapshot_id: `sha256:${'ab'.repeat(32)}`,
  seed: 42,
  mode: 'live',
  started_at: '2025-01-02T03:04:05.678Z',
  finished_at: '2025-01-02T03:05:00Z',
  provider: { type: 'openai', base_url: 'http://127.0.0.1:8000/v1' },
  model: 'gpt-test',
  params: { temperature: 0 },
  scorers: [{ name: 'answer', type: 'exact', threshold: 1 }],
  dataset: { row_count: 100 },
  sample_size: null,
  evalops_version: '0.1.0',
  node_version: 'v20.20.2',
};

describe('validateRunMetadata', () => {
  it('accepts complete metadata and the bare required keys', () => {
    expect(validateRunMetadata(valid)).toEqual({ ok: true });
    const { commit_sha, prompt_version, data_snapshot_id, seed, mode } = valid;
    expect(validateRunMetadata({ commit_sha, prompt_version, data_snapshot_id, seed, mode })).toEqual({ ok: true });
    expect(validateRunMetadata({ ...valid, commit_sha: 'unknown', git_dirty: null })).toEqual({ ok: true });
    expect(validateRunMetadata({ ...valid, provider: { type: 'echo', base_url: null } })).toEqual({ ok: true });
  });

  it('names every missing required key', () => {
    const { seed: _seed, mode: _mode, ...rest } = valid;
    expect(validateRunMetadata(rest)).toEqual({ ok: false, errors: ['missing required key: seed', 'missing required key: mode'] });
    expect(validateRunMetadata({})).toEqual({
      ok: false,
      errors: [
        'missing required key: commit_sha',
        'missing required key: prompt_version',
        'missing required key: data_snapshot_id',
        'missing required key: seed',
        'missing required key: mode',
      ],
    });
  });

  it('names every invalid key with what is wrong', () => {
    const result = validateRunMetadata({
      ...valid,
      seed: 1.5,
      mode: 'dry-run',
      data_snapshot_id: 'md5:abc',
      prompt_version: 'qa-prompt',
      commit_sha: 'HEAD',
      started_at: 'yesterday',
      provider: { type: 'openai', base_url: 'https://user:secret@api.example.com/v1' },
      dataset: {},
    });
    expect(result).toEqual({
      ok: false,
      errors: [
        'invalid commit_sha: must be a lowercase hex commit id (7-64 digits) or "unknown"',
        'invalid prompt_version: must be name@N (e.g. "qa-prompt@3")',
        'invalid data_snapshot_id: must be "sha256:" followed by 64 lowercase hex digits',
        'invalid seed: must be integer',
        'invalid mode: must be one of live, replay',
        'invalid started_at: must match format "date-time"',
        'invalid provider.base_url: must not contain credentials',
        'missing required key: dataset.row_count',
      ],
    });
  });

  it('rejects a non-object', () => {
    expect(validateRunMetadata('nope')).toEqual({ ok: false, errors: ['invalid run_metadata: must be object'] });
  });
});

describe('published schema', () => {
  it('docs/run-metadata.schema.json equals RUN_METADATA_SCHEMA (regenerate: npx tsx scripts/write-run-metadata-schema.ts)', () => {
    const committed: unknown = JSON.parse(readFileSync(new URL('../../../docs/run-metadata.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(RUN_METADATA_SCHEMA)));
  });
});

describe('resolveCommitSha', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('prefers COMMIT_SHA, with the tree state unknown', async () => {
    const calls: string[][] = [];
    const info = await resolveCommitSha({ COMMIT_SHA: ' ABCDEF1234567 ' }, '/nowhere', async (args) => {
      calls.push([...args]);
      return '';
    });
    expect(info).toEqual({ commitSha: 'abcdef1234567', dirty: null, source: 'env' });
    expect(calls).toEqual([]);
  });

  it('uses git rev-parse HEAD and git status --porcelain', async () => {
    const sha = 'fedcba9876543210fedcba9876543210fedcba98';
    const answers: Record<string, string> = { 'rev-parse HEAD': `${sha}\n`, 'status --porcelain': ' M src/x.ts\n?? new.jsonl\n' };
    const info = await resolveCommitSha({}, '/repo', async (args, cwd) => {
      expect(cwd).toBe('/repo');
      return answers[args.join(' ')] ?? '';
    });
    expect(info).toEqual({ commitSha: sha, dirty: true, source: 'git' });
    const clean = await resolveCommitSha({}, '/repo', async (args) => (args[0] === 'rev-parse' ? sha : ''));
    expect(clean.dirty).toBe(false);
  });

  it('falls back to unknown outside a git repository (real git)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'evalops-nogit-'));
    dirs.push(dir);
    expect(await resolveCommitSha({ GIT_DIR: undefined }, dir)).toEqual({ commitSha: 'unknown', dirty: null, source: 'unknown' });
  });
});
