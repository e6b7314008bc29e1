import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig, redactUrl } from '../../../src/config/config.ts';

describe('loadConfig', () => {
  it('gives the embedded defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ runnerMode: 'inprocess', databaseUrl: undefined, host: '127.0.0.1', port: 8000, logLevel: 'info', migrateOnStart: true });
    expect(c.dataDir).toMatch(/\.evalops$/);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.jobs)).toBe(true);
  });

  it('migrates on start by default only for the embedded database', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://h/db' }).migrateOnStart).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgresql://h/db', MIGRATE_ON_START: 'true' }).migrateOnStart).toBe(true);
    expect(loadConfig({ MIGRATE_ON_START: 'false' }).migrateOnStart).toBe(false);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(8000);
  });

  it('reports every bad variable, one line each, without echoing passwords', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ PORT: '99999', JOB_CONCURRENCY: '0', REDIS_URL: 'http://u:topsecret@x', MIGRATE_ON_START: 'maybe' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toHaveLength(4);
    expect(error!.problems.join('\n')).toContain('PORT: accepts a whole number from 0 to 65535 (got "99999")');
    expect(error!.problems.join('\n')).toContain('JOB_CONCURRENCY: accepts a whole number from 1 to 1000');
    expect(error!.problems.join('\n')).toContain('MIGRATE_ON_START: accepts true or false');
    expect(error!.message).not.toContain('topsecret');
  });

  it('echoes a URL that fails validation with its credentials masked, parsed or not', () => {
    const messageOf = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as ConfigError).message;
      }
      return '';
    };
    const wrongScheme = messageOf({ DATABASE_URL: 'mysql://app:pw-one@db/x?password=pw-two&sslmode=require' });
    expect(wrongScheme).toContain('DATABASE_URL: accepts a URL starting with postgres:// or postgresql:// (got "mysql://app:***@db/x?password=***&sslmode=require")');
    const unparsable = messageOf({ DATABASE_URL: 'postgres//app:pw-three@db:5432/x?sslpassword=pw-four', REDIS_URL: 'redis:/tok-five@r?token=tok-six' });
    expect(unparsable).toContain('DATABASE_URL:');
    for (const secret of ['pw-one', 'pw-two', 'pw-three', 'pw-four', 'tok-six']) expect(wrongScheme + unparsable).not.toContain(secret);
  });

  it('bounds database waits by DB_UNAVAILABLE_ANSWER_MS, 2 s unless set, and refuses a bound too small to connect in', () => {
    expect(loadConfig({}).dbUnavailableAnswerMs).toBe(2000);
    expect(loadConfig({ DB_UNAVAILABLE_ANSWER_MS: '5000' }).dbUnavailableAnswerMs).toBe(5000);
    expect(() => loadConfig({ DB_UNAVAILABLE_ANSWER_MS: '50' })).toThrow(/DB_UNAVAILABLE_ANSWER_MS: accepts a whole number from 200 to 600000/);
  });

  it('refuses a retry ceiling below its base', () => {
    expect(() => loadConfig({ JOB_RETRY_BASE_MS: '5000', JOB_RETRY_MAX_MS: '10' })).toThrow(/JOB_RETRY_MAX_MS: must be at least JOB_RETRY_BASE_MS/);
  });
});

describe('secrets in printed configuration', () => {
  it('masks URL passwords and bare Redis tokens', () => {
    expect(redactUrl('postgresql://app:pw@db:5432/x')).toBe('postgresql://app:***@db:5432/x');
    expect(redactUrl('redis://:tok@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379');
    expect(redactUrl('redis://tok@127.0.0.1:6379')).toBe('redis://***@127.0.0.1:6379');
    expect(redactUrl('not a url')).toBe('not a url');
  });

  it('masks credential-like query parameters and lone user names, keeping PostgreSQL roles', () => {
    expect(redactUrl('postgresql://app@db/x?password=a&sslpassword=b&sslmode=require&application_name=evalops')).toBe(
      'postgresql://app@db/x?password=***&sslpassword=***&sslmode=require&application_name=evalops',
    );
    expect(redactUrl('https://s3.example/b/o?X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-Security-Token=t&X-Amz-Date=20260101')).toBe(
      'https://s3.example/b/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***&X-Amz-Date=20260101',
    );
    expect(redactUrl('https://h/v1?api_key=1&apikey=2&key=3&access_token=4&client_secret=5&pwd=6&passwd=7&subscription-key=8&model=m')).toBe(
      'https://h/v1?api_key=***&apikey=***&key=***&access_token=***&client_secret=***&pwd=***&passwd=***&subscription-key=***&model=m',
    );
    expect(redactUrl('https://ghp_token@example.com/x')).toBe('https://***@example.com/x');
    expect(redactUrl('https://app.example/cb#access_token=t&state=s')).toBe('https://app.example/cb#access_token=***&state=s');
  });

  it('describeConfig never contains the password', () => {
    const d = describeConfig(loadConfig({ DATABASE_URL: 'postgresql://app:hunter2@db/x', REDIS_URL: 'redis://:hunter3@r:6379' }));
    expect(JSON.stringify(d)).not.toMatch(/hunter[23]/);
    expect(d.DATABASE_URL).toBe('postgresql://app:***@db/x');
  });
});
