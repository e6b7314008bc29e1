/**
 * What `evalops sql` refuses inside an otherwise valid read statement: the one list of functions and
 * relations. It applies always, on top of the least-privileged role (migration 0006), because that
 * role may be missing (a connecting user without CREATEROLE) and because several of these run even
 * as a non-superuser (set_config, pg_sleep, advisory locks, nextval, query_to_xml).
 *
 * Names are compared after the parser has folded unquoted identifiers to lower case, on the last
 * part of a qualified name (`pg_catalog.pg_read_file` is `pg_read_file`), wherever a name can call a
 * function: `f(x)`, `FROM f(x)`, and the attribute notation `(x).f`, which PostgreSQL also runs as
 * `f(x)`.
 */

interface FunctionRule {
  /** Exact names, or prefixes ending in `*`. */
  names: string[];
  /** Completes "refused: NAME() ..." */
  why: string;
}

const FUNCTION_RULES: FunctionRule[] = [
  {
    names: ['pg_read_file', 'pg_read_binary_file', 'pg_stat_file', 'pg_ls_*', 'pg_file_*', 'pg_logdir_ls', 'pg_current_logfile', 'pg_hba_file_rules', 'pg_ident_file_mappings', 'pg_show_all_file_settings'],
    why: "reads or writes files on the database server's host",
  },
  { names: ['lo_*', 'loread', 'lowrite'], why: 'works on large objects (lo_import and lo_export reach files on the database host)' },
  {
    // Each of these runs SQL given as text, which would pass by this check unseen.
    names: ['query_to_xml*', 'query_to_xmlschema', 'cursor_to_xml*', 'table_to_xml*', 'schema_to_xml*', 'database_to_xml*', 'ts_stat', 'ts_rewrite', 'crosstab*', 'dblink*'],
    why: 'runs SQL given as text (or on another server), out of reach of this check',
  },
  { names: ['set_config'], why: 'changes settings, including the role the statement runs as' },
  {
    names: ['pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote', 'pg_log_backend_memory_contexts', 'pg_notify'],
    why: 'acts on other sessions or on the server itself',
  },
  {
    names: [
      'pg_switch_wal', 'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_start_backup', 'pg_stop_backup', 'pg_wal_replay_pause', 'pg_wal_replay_resume',
      'pg_create_*', 'pg_drop_replication_slot', 'pg_copy_*', 'pg_replication_slot_advance', 'pg_replication_origin_*', 'pg_logical_*', 'pg_sync_replication_slots',
    ],
    why: 'changes backups, WAL or replication state',
  },
  {
    names: ['pg_stat_reset*', 'pg_stat_statements_reset', 'pg_set_*', 'pg_clear_*', 'pg_restore_relation_stats', 'pg_restore_attribute_stats', 'pg_import_system_collations', 'brin_summarize_*', 'brin_desummarize_range', 'gin_clean_pending_list', 'pg_truncate_visibility_map'],
    why: 'changes statistics, catalogs or indexes',
  },
  { names: ['nextval', 'setval'], why: 'advances a sequence (a write no rollback undoes)' },
  { names: ['pg_advisory_*', 'pg_try_advisory_*'], why: 'takes advisory locks, which can outlive the statement and hold up migrations' },
  { names: ['txid_current', 'txid_current_if_assigned', 'pg_current_xact_id', 'pg_current_xact_id_if_assigned'], why: 'assigns a transaction id, which a read never needs' },
  // --timeout bounds any statement; pg_sleep only holds a connection (and PGlite never interrupts it).
  { names: ['pg_sleep*'], why: 'only waits, holding a connection; a read has no use for it' },
];

/** Relations a superuser or pg_read_all_data could read but an operator's window must not show. */
const RELATION_RULES: Record<string, string> = {
  pg_authid: 'holds the password hashes of every role',
  pg_shadow: 'holds the password hashes of every role',
  pg_user_mapping: 'holds the credentials of foreign servers',
  // Views over superuser-only functions: pg_read_all_data would show them through the view's owner.
  pg_hba_file_rules: "shows the server's configuration files",
  pg_ident_file_mappings: "shows the server's configuration files",
  pg_file_settings: "shows the server's configuration files",
};

const exact = new Map<string, string>();
const prefixes: Array<[string, string]> = [];
for (const rule of FUNCTION_RULES) {
  for (const name of rule.names) {
    if (name.endsWith('*')) prefixes.push([name.slice(0, -1), rule.why]);
    else exact.set(name, rule.why);
  }
}

/** Why a function of this (unqualified, folded) name is refused, or undefined when it may run. */
export function refusedFunction(name: string): string | undefined {
  const lower = name.toLowerCase();
  return exact.get(lower) ?? prefixes.find(([prefix]) => lower.startsWith(prefix))?.[1];
}

/** Why this relation is refused, or undefined. */
export function refusedRelation(name: string): string | undefined {
  return RELATION_RULES[name.toLowerCase()];
}

/** Every refused function name or prefix, for the docs and tests. */
export function refusedFunctionNames(): string[] {
  return FUNCTION_RULES.flatMap((rule) => rule.names);
}
