import { refusedFunction, refusedRelation } from './read-statement-rules.ts';

/** A statement `evalops sql` will not run; the message names the reason. */
export class RefusedStatementError extends Error {
  constructor(reason: string) {
    super(`refused: ${reason}`);
    this.name = 'RefusedStatementError';
  }
}

const ACCEPTED = 'evalops sql runs one SELECT, WITH, TABLE, VALUES, EXPLAIN or SHOW';

/** Statements nested in a WITH that change data. */
const WRITES: Record<string, string> = { InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE' };

type Node = Record<string, unknown>;

// The parser is WebAssembly (about 30 ms to load): only `evalops sql` and the local read route pay
// for it, the first time they run, never the CLI's other commands or the server's start.
let parser: Promise<typeof import('libpg-query')> | undefined;
const loadParser = () => (parser ??= import('libpg-query'));

/**
 * Parses `text` with PostgreSQL's own parser and throws RefusedStatementError unless it is exactly
 * one SELECT / WITH / TABLE / VALUES / EXPLAIN / SHOW that writes nothing, creates nothing, locks no
 * row and calls nothing in read-statement-rules.ts. EXPLAIN ANALYZE runs its statement, so the
 * statement inside EXPLAIN is held to the same rules. A syntax error is thrown as the parser's Error.
 */
export async function checkReadStatement(text: string): Promise<void> {
  if (!text.trim()) throw new RefusedStatementError(`the text holds no statement; ${ACCEPTED}`);
  const { parse } = await loadParser();
  const tree = (await parse(text)) as { stmts?: Array<{ stmt: Node; stmt_location?: number }> };
  const stmts = tree.stmts ?? [];
  if (stmts.length === 0) throw new RefusedStatementError(`the text holds no statement; ${ACCEPTED}`);
  if (stmts.length > 1) throw new RefusedStatementError(`one statement only (found ${stmts.length}); ${ACCEPTED}`);
  const { stmt, stmt_location: at = 0 } = stmts[0]!;
  const [kind, body] = Object.entries(stmt)[0] as [string, Node];
  const firstWord = text.slice(at).trim().split(/\s+/)[0]!.toUpperCase();

  let query: Node;
  if (kind === 'VariableShowStmt') return;
  if (kind === 'SelectStmt') query = stmt;
  else if (kind === 'ExplainStmt') {
    query = body.query as Node;
    const [innerKind] = Object.keys(query);
    if (innerKind !== 'SelectStmt') throw new RefusedStatementError(`${WRITES[innerKind!] ?? keywordsOf(innerKind)} is not a read statement, and EXPLAIN ANALYZE would run it; ${ACCEPTED}`);
  } else throw new RefusedStatementError(`${firstWord} is not a read statement; ${ACCEPTED}`);
  checkTree(query);
}

/** `CreateTableAsStmt` as `CREATE TABLE AS`: the words of a statement nested in EXPLAIN. */
function keywordsOf(kind: string | undefined): string {
  return (kind ?? 'statement').replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** Walks every node (iteratively: a deeply nested statement must not overflow the stack). */
function checkTree(root: Node): void {
  const stack: unknown[] = [root];
  while (stack.length) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value as Node)) {
      checkNode(key, child as Node);
      if (child && typeof child === 'object') stack.push(child);
    }
  }
}

function checkNode(kind: string, node: Node): void {
  if (kind in WRITES) throw new RefusedStatementError(`a WITH query that changes data (${WRITES[kind]}) is not a read; a data-modifying WITH runs even in a SELECT`);
  switch (kind) {
    case 'SelectStmt':
      if (node.intoClause) throw new RefusedStatementError('SELECT ... INTO creates a table; drop the INTO clause');
      if (Array.isArray(node.lockingClause) && node.lockingClause.length) {
        throw new RefusedStatementError('SELECT ... FOR UPDATE/SHARE locks rows, which would hold up job claims; a read needs no lock');
      }
      return;
    case 'FuncCall':
      return checkFunctionName(lastName(node.funcname));
    case 'ColumnRef': {
      // `(x).f` and `t.f` may call f(x): check every qualified part after the first.
      const fields = (node.fields as Node[] | undefined) ?? [];
      for (const field of fields.slice(1)) checkFunctionName(stringOf(field));
      return;
    }
    case 'A_Indirection':
      for (const part of (node.indirection as Node[] | undefined) ?? []) checkFunctionName(stringOf(part));
      return;
    case 'RangeVar': {
      const name = typeof node.relname === 'string' ? node.relname : undefined;
      const why = name ? refusedRelation(name) : undefined;
      if (why) throw new RefusedStatementError(`${name} ${why}`);
      return;
    }
  }
}

function checkFunctionName(name: string | undefined): void {
  if (!name) return;
  const why = refusedFunction(name);
  if (why) throw new RefusedStatementError(`${name}() ${why}`);
}

function lastName(parts: unknown): string | undefined {
  return Array.isArray(parts) && parts.length ? stringOf(parts.at(-1) as Node) : undefined;
}

function stringOf(node: Node | undefined): string | undefined {
  const s = node?.String as { sval?: string } | undefined;
  return s?.sval;
}
