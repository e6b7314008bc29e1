import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/processes.ts';

describe('evalops config', () => {
  it('prints the effective configuration with passwords masked', async () => {
    const res = await runCli(['config'], { DATABASE_URL: 'postgresql://app:s3cret-pw@db.internal:5432/evalops', REDIS_URL: 'redis://:r3dis-pw@127.0.0.1:6379/0', DATA_DIR: '/tmp/x' });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/DATABASE_URL\s+postgresql:\/\/app:\*\*\*@db.internal:5432\/evalops/);
    expect(res.stdout).toMatch(/REDIS_URL\s+redis:\/\/:\*\*\*@127.0.0.1:6379\/0/);
    expect(res.stdout).not.toMatch(/s3cret|r3dis/);
    expect(res.stdout).toMatch(/JOB_RUNNER_MODE\s+inprocess/);
  });

  it('stops on bad values with one line per variable saying what it accepts', async () => {
    const res = await runCli(['config'], { PORT: 'eighty', JOB_RUNNER_MODE: 'celery', DATABASE_URL: 'mysql://u:pw@h/db', LOG_LEVEL: 'loud' });
    expect(res.code).toBe(78);
    const lines = res.stderr.trim().split('\n').slice(1).map((l) => l.trim());
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^JOB_RUNNER_MODE: accepts inprocess/),
      expect.stringMatching(/^DATABASE_URL: accepts a URL starting with postgres:\/\/ or postgresql:\/\/ \(got "mysql:\/\/u:\*\*\*@h\/db"\)$/),
      expect.stringMatching(/^PORT: accepts a whole number from 0 to 65535/),
      expect.stringMatching(/^LOG_LEVEL: accepts fatal, error/),
    ]));
    expect(res.stderr).not.toContain(':pw@');
  });

  it('exits 2 on a usage error', async () => {
    const res = await runCli(['migrate', 'sideways'], {});
    expect(res.code).toBe(2);
  });
});
