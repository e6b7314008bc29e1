import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAIServer, startFakeOpenAIServer } from '../helpers/fake-openai-server.ts';
import { casesJsonl } from '../helpers/eval-helpers.ts';
import { runCli } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

/**
 * The evaluation CLI as CI uses it: `eval run` on the configured database (no server running, then
 * with one), its exit codes and JUnit report, `eval verify` (runbook C.4) and `eval validate`.
 */

const SECRET = 'sk-test-cli-91d0c3aa7e5b42f8';
let db: TestDatabase;
let openai: FakeOpenAIServer;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  openai = await startFakeOpenAIServer({ apiKey: SECRET });
  dir = mkdtempSync(path.join(os.tmpdir(), 'evalops-eval-cli-'));
  env = { ...db.env, COMMIT_SHA: 'feedface0123', CLI_TEST_API_KEY: SECRET, LOG_LEVEL: 'warn' };
  writeFileSync(path.join(dir, 'prompt.yaml'), 'name: cli-qa\nmessages:\n  - role: system\n    content: Repeat the text.\n  - role: user\n    content: "{{text}}"\nparams:\n  temperature: 0\n');
  writeFileSync(path.join(dir, 'cases.jsonl'), casesJsonl(8, 'cli'));
  writeFileSync(path.join(dir, 'bad.jsonl'), '{"id":"1","vars":{"text":"a"}}\n{"id":"1","vars":{"text":"b"}}\n{oops\n');
  writeFileSync(
    path.join(dir, 'eval.yaml'),
    [
      'name: cli run',
      'prompt: prompt.yaml',
      'dataset: cases.jsonl',
      'provider:',
      '  type: openai',
      `  base_url: ${openai.url}`,
      '  api_key_env: CLI_TEST_API_KEY',
      'model: gpt-cli',
      'scorers:',
      '  - { name: exact, type: exact }',
      'thresholds:',
      '  exact: 0.9',
      'seed: 11',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await openai?.close();
  await db?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const lastLine = (text: string) => text.trim().split('\n').at(-1)!;

describe('with no server running (a temporary service on the configured database)', () => {
  let runId: string;
  let runDir: string;

  it('pushes prompts idempotently and refuses an invalid dataset with line numbers', async () => {
    const first = await runCli(['prompt', 'push', path.join(dir, 'prompt.yaml')], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe('cli-qa@1');
    const again = await runCli(['prompt', 'push', path.join(dir, 'prompt.yaml')], env);
    expect(again.stdout).toMatch(/^cli-qa@1 \(unchanged/);
    const bad = await runCli(['dataset', 'push', path.join(dir, 'bad.jsonl')], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/line 2: duplicate id '1': also used on line 1/);
    expect(bad.stderr).toMatch(/line 3: invalid JSON/);
  });

  it('eval run: exit 0 when the thresholds pass, a summary table, the run folder on the last line', async () => {
    const res = await runCli(['eval', 'run', '--config', path.join(dir, 'eval.yaml')], env, 90_000);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/run [0-9a-f-]{36}: succeeded \(cli-qa@1/);
    expect(res.stdout).toMatch(/threshold exact pass_rate 1\.000 >= 0\.9: PASS/);
    runDir = lastLine(res.stdout);
    runId = path.basename(runDir);
    expect(runDir).toBe(path.join(db.dataDir, 'runs', runId));
    for (const name of ['results.jsonl', 'summary.json', 'run_metadata.json']) expect(existsSync(path.join(runDir, name))).toBe(true);
    expect(readFileSync(path.join(runDir, 'run_metadata.json'), 'utf8')).not.toContain(SECRET);
    expect(res.stdout + res.stderr).not.toContain(SECRET);
  });

  it('eval verify: a replay reproduces results.jsonl byte for byte (exit 0) without asking the provider', async () => {
    const before = openai.requests.length;
    const res = await runCli(['eval', 'verify', runId], env, 90_000);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/reproduced: byte for byte/);
    const hashes = [...res.stdout.matchAll(/sha256 ([0-9a-f]{64})/g)].map((m) => m[1]);
    expect(hashes).toHaveLength(2);
    expect(hashes[0]).toBe(hashes[1]);
    expect(openai.requests.length).toBe(before);
    const check = await runCli(['eval', 'validate', runDir], env);
    expect(check.code).toBe(0);
  });

  it('eval run: a distinct exit code when a threshold fails, with a JUnit report; verify against other results exits 12', async () => {
    const junit = path.join(dir, 'junit.xml');
    const res = await runCli(
      ['eval', 'run', '--config', path.join(dir, 'eval.yaml'), '--scorer', '{"name":"exact","type":"exact","value":"never"}', '--threshold', 'exact=0.95', '--junit', junit, '--no-progress'],
      env,
      90_000,
    );
    expect(res.code, res.stdout + res.stderr).toBe(10);
    expect(res.stdout).toMatch(/threshold exact pass_rate 0\.000 >= 0\.95: FAIL/);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="evalops" tests="9" failures="9" errors="0">/);
    expect(xml).toMatch(/<testcase classname="cli-qa@1" name="c1" time="[\d.]+">\s*<failure type="score" message="exact: output &quot;echo: cli 1&quot; differs from expected &quot;never&quot;"/);
    expect(xml).toMatch(/<testcase classname="thresholds" name="exact pass_rate &gt;= 0.95">/);
    const other = path.basename(lastLine(res.stdout));
    const verify = await runCli(['eval', 'verify', runId, '--against', other], env, 90_000);
    expect(verify.code).toBe(12);
    expect(verify.stdout).toMatch(/NOT reproduced/);
  });

  it('eval run: exit 1 with the API sentence for an unknown prompt version', async () => {
    const res = await runCli(['eval', 'run', '--config', path.join(dir, 'eval.yaml'), '--prompt', 'cli-qa@7'], env, 90_000);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/404: prompt version cli-qa@7 .*latest version of cli-qa is cli-qa@1/);
  });
});

describe('with a server running', () => {
  let server: TestServer;
  beforeAll(async () => {
    process.env.CLI_TEST_API_KEY = SECRET;
    server = await startTestServer(db, { COMMIT_SHA: 'feedface0123' });
  });
  afterAll(async () => {
    await server?.close(2000);
    delete process.env.CLI_TEST_API_KEY;
  });

  it('eval run --remote runs on that server; eval list and show find the run', async () => {
    const res = await runCli(['eval', 'run', '--config', path.join(dir, 'eval.yaml'), '--remote', server.url, '--seed', '12', '--json'], { ...env, CLI_TEST_API_KEY: 'not-used-by-the-client' }, 90_000);
    // The key is read by the process that runs the job: here the test server, which has it from this process.
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const run = JSON.parse(res.stdout);
    expect(run).toMatchObject({ status: 'succeeded', seed: 12, thresholds_passed: true });
    const list = await runCli(['eval', 'list', '--remote', server.url], env);
    expect(list.stdout).toContain(run.run_id);
    const show = await runCli(['eval', 'show', run.run_id], env, 60_000);
    expect(show.code, show.stderr).toBe(0);
    expect(lastLine(show.stdout)).toBe(run.run_dir);
  });
});
