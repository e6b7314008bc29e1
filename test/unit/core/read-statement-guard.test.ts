import { describe, expect, it } from 'vitest';
import { checkReadStatement, RefusedStatementError } from '../../../src/db/read-statement-guard.ts';
import { refusedFunction, refusedFunctionNames } from '../../../src/db/read-statement-rules.ts';

async function reasonOf(sql: string): Promise<string | undefined> {
  try {
    await checkReadStatement(sql);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(RefusedStatementError);
    return (err as Error).message;
  }
}

describe('the read-statement guard of evalops sql', () => {
  it.each([
    "SELECT status, COUNT(*) FROM jobs WHERE created_at >= NOW() - INTERVAL '1 hour' GROUP BY status;",
    'WITH s AS (SELECT 1 AS x) SELECT x FROM s',
    'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r',
    'TABLE jobs',
    'VALUES (1), (2)',
    'EXPLAIN ANALYZE SELECT * FROM jobs',
    'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) WITH s AS (SELECT 1) SELECT * FROM s',
    'SHOW work_mem',
    'SHOW ALL',
    "SELECT current_setting('statement_timeout'), now(), count(*) FROM pg_stat_activity",
    'SELECT t.status FROM jobs AS t',
    '  select 1  ',
  ])('accepts %s', async (sql) => {
    expect(await reasonOf(sql)).toBeUndefined();
  });

  it.each([
    ['SELECT 1; SELECT 2', /one statement only \(found 2\)/],
    ['', /holds no statement/],
    ['-- nothing', /holds no statement/],
    ["COPY jobs TO PROGRAM 'id'", /COPY is not a read statement/],
    ['copy (select 1) to stdout', /COPY is not a read statement/],
    ['INSERT INTO jobs DEFAULT VALUES', /INSERT is not a read statement/],
    ['CREATE TABLE x (a int)', /CREATE is not a read statement/],
    ['SET ROLE postgres', /SET is not a read statement/],
    ['RESET ROLE', /RESET is not a read statement/],
    ['BEGIN', /BEGIN is not a read statement/],
    ['CALL p()', /CALL is not a read statement/],
    ["DO $$ BEGIN END $$", /DO is not a read statement/],
    ['EXPLAIN ANALYZE DELETE FROM jobs', /DELETE is not a read statement, and EXPLAIN ANALYZE would run it/],
    ['EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1', /CREATE TABLE AS is not a read statement/],
    ['WITH d AS (DELETE FROM jobs RETURNING *) SELECT * FROM d', /changes data \(DELETE\)/],
    ['WITH u AS (UPDATE jobs SET status = status RETURNING 1) SELECT 1', /changes data \(UPDATE\)/],
    ['EXPLAIN ANALYZE WITH i AS (INSERT INTO jobs DEFAULT VALUES RETURNING 1) SELECT 1', /changes data \(INSERT\)/],
    ['SELECT * INTO t FROM jobs', /SELECT \.\.\. INTO creates a table/],
    ['SELECT * FROM jobs FOR UPDATE', /FOR UPDATE\/SHARE locks rows/],
    ['SELECT * FROM (SELECT * FROM jobs FOR SHARE SKIP LOCKED) s', /FOR UPDATE\/SHARE locks rows/],
    ["SELECT pg_read_file('/etc/passwd')", /pg_read_file\(\) reads or writes files/],
    ["SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')", /pg_read_file\(\)/],
    ['SELECT "pg_read_binary_file"(\'/etc/passwd\')', /pg_read_binary_file\(\)/],
    ["SELECT ('/etc/passwd'::text).pg_read_file", /pg_read_file\(\)/],
    ["SELECT * FROM pg_ls_dir('.')", /pg_ls_dir\(\)/],
    ["SELECT * FROM ROWS FROM (pg_ls_waldir())", /pg_ls_waldir\(\)/],
    ["SELECT lo_import('/etc/passwd')", /lo_import\(\) works on large objects/],
    ['SELECT loread(0, 1)', /loread\(\)/],
    ["SELECT query_to_xml('select 1', true, true, '')", /query_to_xml\(\) runs SQL given as text/],
    ["SELECT table_to_xml('pg_authid'::regclass, true, true, '')", /table_to_xml\(\)/],
    ["SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", /dblink\(\)/],
    ["SELECT set_config('role', 'postgres', false)", /set_config\(\) changes settings, including the role/],
    ['SELECT pg_terminate_backend(1)', /pg_terminate_backend\(\) acts on other sessions/],
    ['SELECT pg_cancel_backend(1)', /pg_cancel_backend\(\)/],
    ['SELECT pg_reload_conf()', /pg_reload_conf\(\)/],
    ["SELECT pg_notify('jobs', 'x')", /pg_notify\(\)/],
    ['SELECT pg_sleep(45)', /pg_sleep\(\) only waits/],
    ["SELECT pg_sleep_for('1 minute')", /pg_sleep_for\(\)/],
    ['SELECT 1 WHERE (SELECT pg_advisory_lock(1)) IS NULL', /pg_advisory_lock\(\) takes advisory locks/],
    ['SELECT pg_try_advisory_xact_lock(1)', /pg_try_advisory_xact_lock\(\)/],
    ["SELECT nextval('s')", /nextval\(\) advances a sequence/],
    ["SELECT setval('s', 1)", /setval\(\)/],
    ['SELECT txid_current()', /txid_current\(\) assigns a transaction id/],
    ['SELECT pg_stat_reset()', /pg_stat_reset\(\) changes statistics/],
    ["SELECT pg_create_logical_replication_slot('s', 'test_decoding')", /pg_create_logical_replication_slot\(\) changes backups, WAL or replication/],
    ['SELECT rolpassword FROM pg_authid', /pg_authid holds the password hashes/],
    ['SELECT * FROM pg_catalog.pg_shadow', /pg_shadow holds the password hashes/],
    ['SELECT * FROM pg_hba_file_rules', /pg_hba_file_rules shows the server's configuration files/],
    ['WITH x AS (SELECT pg_read_file(\'/etc/passwd\')) SELECT * FROM x', /pg_read_file\(\)/],
    ['EXPLAIN ANALYZE SELECT pg_sleep(10)', /pg_sleep\(\)/],
    ['SELECT (SELECT (SELECT (SELECT set_config(\'a.b\', \'c\', true))))', /set_config\(\)/],
  ])('refuses %s', async (sql, reason) => {
    expect(await reasonOf(sql)).toMatch(reason);
  });

  it('passes a syntax error on as the parser reports it', async () => {
    await expect(checkReadStatement('SELEC 1')).rejects.toThrow(/syntax error at or near "SELEC"/);
  });

  it('survives a deeply nested statement', async () => {
    const deep = `SELECT ${'('.repeat(500)}1${')'.repeat(500)}`;
    expect(await reasonOf(deep)).toBeUndefined();
  });

  it('keeps every refused name in the one list', () => {
    for (const name of ['pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'lo_export', 'dblink_exec', 'set_config', 'pg_sleep', 'pg_advisory_lock', 'nextval', 'setval']) {
      expect(refusedFunction(name), name).toBeDefined();
    }
    for (const name of ['count', 'now', 'current_setting', 'pg_size_pretty', 'pg_database_size', 'date_trunc', 'percentile_cont']) expect(refusedFunction(name), name).toBeUndefined();
    expect(refusedFunctionNames()).toContain('pg_sleep*');
  });
});
