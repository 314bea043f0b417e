import type { Selectable } from 'kysely';
import type { Dialect } from '../db/index.js';
import type { SessionsTable } from './tables.js';

/**
 * A statement's text and parameters. The SQLite turn writes run it as it is; the store hands it to
 * Kysely as a CompiledQuery, which Kysely freezes and gives a random id: work a hot write never needs.
 */
export interface SqlQuery {
  sql: string;
  parameters: readonly unknown[];
}

/**
 * The SQL of a session turn (read, lease, commit), written once as text instead of built by Kysely's
 * query builder on every call: building and compiling those queries cost more CPU than running them
 * (issue #13). Everything else in the store keeps the builder. Text is written with `?` and turned
 * into `$n` for PostgreSQL once, here; the SQLite driver reuses one prepared statement per text.
 *
 * On PostgreSQL a commit is one statement (data-modifying CTEs): one round trip and one implicit
 * transaction instead of BEGIN, UPDATE, INSERT, COMMIT, so a pool connection is held a quarter as
 * long, and a write returns the row it wrote. SQLite has no data-modifying CTEs: there the same work
 * is a few statements in one write of a group commit (sqlite-turn-writes.ts), which on an embedded
 * database costs no round trips, and a write is read back with `get` or `holder` instead of a
 * RETURNING clause, which SQLite answers through an ephemeral table (a b-tree and its page cache
 * made and freed for each statement): reading the row back costs less.
 */
export interface SessionSql {
  get(id: string): SqlQuery;
  /** Takes the lease if it is free. PostgreSQL: returns the leased row. */
  acquire(id: string, owner: string, now: number, until: number): SqlQuery;
  /** The session row with its lease: who refused a lease, and whether the caller may know. */
  holder(id: string): SqlQuery;
  exists(id: string): SqlQuery;
  tail(id: string, limit: number): SqlQuery;
  /** SQLite: the session row only (messages and response follow); PostgreSQL: row, messages and response at once, returning the row. */
  create(row: NewSessionRow, messages: readonly string[], response: ResponseRow | null): SqlQuery;
  /** SQLite: the session update only; PostgreSQL: update, messages and response at once, returning the updated row. */
  append(id: string, owner: string, count: number, now: number, changes: RowChanges, messages: readonly string[], response: ResponseRow | null): SqlQuery;
  /** SQLite only: the messages of a create or append, numbered from `firstSeq`. */
  insertMessages(id: string, firstSeq: number, messages: readonly string[], now: number): SqlQuery;
  /** SQLite only: the response of a create or append, at the session's new `nextSeq`. */
  insertResponse(sessionId: string, nextSeq: number, now: number, response: ResponseRow): SqlQuery;
}

/** An OpenAI Responses answer written with the turn that produced it (stored-responses.ts reads it). */
export interface ResponseRow {
  id: string;
  /** The response object, JSON. */
  body: string;
}

export interface NewSessionRow {
  id: string;
  ownerId: string | null;
  systemPrompt: string | null;
  model: string | null;
  agent: string | null;
  metadata: string | null;
  count: number;
  now: number;
}

/** Null = keep the stored value. */
export interface RowChanges {
  systemPrompt: string | null;
  model: string | null;
  metadata: string | null;
}

export type SessionRow = Omit<Selectable<SessionsTable>, 'lease_owner' | 'lease_until'>;
/** The row `holder` reads: who holds the lease, and until when. */
export type HolderRow = SessionRow & { lease_owner: string | null; lease_until: number | null };

const SESSION_COLUMNS =
  'id, owner_id, is_public, whitelist, blacklist, acl_version, system_prompt, model, agent, metadata, message_count, next_seq, created_at, updated_at';

/**
 * A session row from its column values in SESSION_COLUMNS order (then lease_owner and lease_until,
 * when the query read them), as the SQLite turn writes get it (raw rows: sqlite-group-commit.ts).
 */
export function sessionRowOf(values: readonly unknown[]): HolderRow {
  const [id, owner_id, is_public, whitelist, blacklist, acl_version, system_prompt, model, agent, metadata, message_count, next_seq, created_at, updated_at] = values as any[];
  const lease_owner = (values[14] ?? null) as string | null;
  const lease_until = (values[15] ?? null) as number | null;
  return { id, owner_id, is_public, whitelist, blacklist, acl_version, system_prompt, model, agent, metadata, message_count, next_seq, created_at, updated_at, lease_owner, lease_until };
}
const INSERT_SESSION =
  `insert into sessions (id, owner_id, is_public, whitelist, blacklist, acl_version, system_prompt, model, agent, metadata, message_count, next_seq, created_at, updated_at, lease_owner, lease_until) ` +
  `values (?, ?, 0, '[]', '[]', 0, ?, ?, ?, ?, ?, ?, ?, ?, null, null)`;
const UPDATE_SESSION =
  'update sessions set next_seq = next_seq + ?, message_count = message_count + ?, updated_at = ?, lease_owner = null, lease_until = null, ' +
  'system_prompt = coalesce(?, system_prompt), model = coalesce(?, model), metadata = coalesce(?, metadata) ' +
  'where id = ? and lease_owner = ?';

/** `?` → `$1, $2, …` (none of these texts holds a `?` inside a literal). */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

export function sessionSql(dialect: Dialect): SessionSql {
  const q = dialect === 'postgres' ? numbered : (text: string) => text;
  const raw = (text: string, parameters: readonly unknown[]): SqlQuery => ({ sql: text, parameters });
  const get = q(`select ${SESSION_COLUMNS} from sessions where id = ?`);
  const acquire = q('update sessions set lease_owner = ?, lease_until = ? where id = ? and (lease_owner is null or lease_until <= ?)');
  const holder = q(`select ${SESSION_COLUMNS}, lease_owner, lease_until from sessions where id = ?`);
  const exists = q('select id from sessions where id = ?');
  const tail = q('select message from session_messages where session_id = ? order by seq desc limit ?');
  const common = {
    get: (id: string) => raw(get, [id]),
    holder: (id: string) => raw(holder, [id]),
    exists: (id: string) => raw(exists, [id]),
    tail: (id: string, limit: number) => raw(tail, [id, limit]),
  };

  if (dialect === 'postgres') {
    // The response row, when there is one (its id is null otherwise), at the session's new next_seq.
    const response = (time: string) =>
      `r as (insert into openai_responses (id, session_id, next_seq, body, created_at) select ?::text, s.id, s.next_seq, ?::text, s.${time} from s where ?::text is not null) `;
    const responseParameters = (row: ResponseRow | null) => [row?.id ?? null, row?.body ?? null, row?.id ?? null];
    // `with ordinality` numbers the array's elements from 1, in order.
    const create = numbered(
      `with s as (${INSERT_SESSION} returning ${SESSION_COLUMNS}), ` +
        `m as (insert into session_messages (session_id, seq, message, created_at) select s.id, t.n, t.message, s.created_at from s, unnest(?::text[]) with ordinality as t(message, n)), ` +
        `${response('created_at')}select * from s`,
    );
    // The update returns the new next_seq: the first new message is next_seq - count.
    const append = numbered(
      `with s as (${UPDATE_SESSION} returning ${SESSION_COLUMNS}), ` +
        `m as (insert into session_messages (session_id, seq, message, created_at) select s.id, s.next_seq - ?::integer + t.n - 1, t.message, s.updated_at from s, unnest(?::text[]) with ordinality as t(message, n)), ` +
        `${response('updated_at')}select * from s`,
    );
    const sqliteOnly = () => {
      throw new Error('PostgreSQL writes messages and responses in the create/append statement');
    };
    const acquireReturning = `${acquire} returning ${SESSION_COLUMNS}`;
    return {
      ...common,
      acquire: (id, owner, now, until) => raw(acquireReturning, [owner, until, id, now]),
      create: (row, messages, responseRow) =>
        raw(create, [row.id, row.ownerId, row.systemPrompt, row.model, row.agent, row.metadata, row.count, row.count + 1, row.now, row.now, messages, ...responseParameters(responseRow)]),
      append: (id, owner, count, now, changes, messages, responseRow) =>
        raw(append, [count, count, now, changes.systemPrompt, changes.model, changes.metadata, id, owner, count, messages, ...responseParameters(responseRow)]),
      insertMessages: sqliteOnly,
      insertResponse: sqliteOnly,
    };
  }

  const insertResponse = 'insert into openai_responses (id, session_id, next_seq, body, created_at) values (?, ?, ?, ?, ?)';
  // One text per batch size, so each stays one cached prepared statement.
  const inserts = new Map<number, string>();
  const insertText = (count: number) => {
    let text = inserts.get(count);
    if (text === undefined) {
      text = `insert into session_messages (session_id, seq, message, created_at) values ${Array.from({ length: count }, () => '(?, ?, ?, ?)').join(', ')}`;
      if (count <= 32) inserts.set(count, text);
    }
    return text;
  };
  return {
    ...common,
    acquire: (id, owner, now, until) => raw(acquire, [owner, until, id, now]),
    create: (row) => raw(INSERT_SESSION, [row.id, row.ownerId, row.systemPrompt, row.model, row.agent, row.metadata, row.count, row.count + 1, row.now, row.now]),
    append: (id, owner, count, now, changes) =>
      raw(UPDATE_SESSION, [count, count, now, changes.systemPrompt, changes.model, changes.metadata, id, owner]),
    insertMessages(id, firstSeq, messages, now) {
      const parameters: unknown[] = [];
      messages.forEach((message, index) => parameters.push(id, firstSeq + index, message, now));
      return raw(insertText(messages.length), parameters);
    },
    insertResponse: (sessionId, nextSeq, now, response) => raw(insertResponse, [response.id, sessionId, nextSeq, response.body, now]),
  };
}
