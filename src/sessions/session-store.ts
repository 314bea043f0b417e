import { CompiledQuery, type Kysely } from 'kysely';
import { ChassisError } from '../errors.js';
import type { Database, Tables } from '../db/index.js';
import { storeUnavailable } from '../errors.js';
import { jsonText, type ChatMessage } from '../model/index.js';
import { sessionSql, type HolderRow, type NewSessionRow, type ResponseRow, type SessionRow, type SessionSql, type SqlQuery } from './session-sql.js';
import { SqliteTurnWrites } from './sqlite-turn-writes.js';

export interface AccessLists {
  isPublic: boolean;
  whitelist: string[];
  blacklist: string[];
}

export interface SessionRecord extends AccessLists {
  id: string;
  ownerId: string | null;
  /** Compare-and-set token for access changes. */
  aclVersion: number;
  systemPrompt: string | null;
  model: string | null;
  /** The named agent the session was made for (null: none); its turns run that agent. */
  agent: string | null;
  metadata: Record<string, unknown> | null;
  messageCount: number;
  /** The seq the next message gets: also the version of the history (it only grows). */
  nextSeq: number;
  /** Epoch milliseconds. */
  createdAt: number;
  updatedAt: number;
}

export interface StoredMessage {
  seq: number;
  message: ChatMessage;
  createdAt: number;
}

/** What a turn may change on the session beside its history; absent = keep. */
export interface SessionChanges {
  systemPrompt?: string;
  model?: string;
  metadata?: Record<string, unknown>;
}

export interface NewSession extends SessionChanges {
  id: string;
  ownerId: string | null;
  agent?: string | null;
}

/** `holder` is the lease owner that keeps the session busy: the id of the run holding it. */
export type LeaseOutcome = { status: 'held'; session: SessionRecord } | { status: 'busy'; holder: string | null } | { status: 'missing' };
export type AppendOutcome = { status: 'appended'; session: SessionRecord } | { status: 'lease_lost' } | { status: 'missing' };

export interface MessagePageQuery {
  limit: number;
  /** Only messages with a smaller seq. */
  before?: number;
  /** Only messages with a larger seq; the page then starts right after it (oldest first). */
  after?: number;
}

export interface OwnedPageCursor {
  updatedAt: number;
  id: string;
}

/** Throws to refuse a caller the session (see `acquire`). */
export type Admit = (session: SessionRecord) => void;

/**
 * Sessions over Kysely. The queries of a turn (get, lease, tail, commit) are fixed SQL texts from
 * session-sql.ts, the rest are built with Kysely, the same on SQLite and PostgreSQL. Messages are append-only rows:
 * a turn inserts its own messages and bumps the session row in one transaction, so its cost does
 * not grow with the history. Every write that opens a transaction starts with a write (never a read
 * that later upgrades), so SQLite takes its write lock at once and waits on busy_timeout.
 * Any store failure surfaces as 503 STORE_UNAVAILABLE.
 */
export class SessionStore {
  private readonly db: Kysely<Tables>;
  private readonly sql: SessionSql;
  /** SQLite: a turn's writes as synchronous statements under group commit (see sqlite-turn-writes.ts). */
  private readonly sqliteWrites?: SqliteTurnWrites;

  constructor(database: Database) {
    this.db = database.db;
    this.sql = sessionSql(database.dialect);
    this.sqliteWrites = database.sqliteWrites === undefined ? undefined : new SqliteTurnWrites(database.sqliteWrites, this.sql);
  }

  /** Runs one of the turn's statements through Kysely (PostgreSQL, and SQLite's reads off the write path). */
  private async rows<T>(query: SqlQuery): Promise<T[]> {
    return (await this.db.executeQuery<T>(CompiledQuery.raw(query.sql, query.parameters as unknown[]))).rows;
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return guard(async () => {
      const [row] = await this.rows<SessionRow>(this.sql.get(id));
      return row === undefined ? undefined : toRecord(row);
    });
  }

  /** Creates the session with its first messages (and `response`, an OpenAI answer naming where they end), atomically. */
  create(session: NewSession, messages: readonly ChatMessage[], response: ResponseRow | null = null): Promise<SessionRecord> {
    const texts = messages.map(jsonText);
    const row: NewSessionRow = {
      id: session.id,
      ownerId: session.ownerId,
      systemPrompt: session.systemPrompt ?? null,
      model: session.model ?? null,
      agent: session.agent ?? null,
      metadata: session.metadata === undefined ? null : JSON.stringify(session.metadata),
      count: messages.length,
      now: Date.now(),
    };
    return guard(async () => {
      if (this.sqliteWrites !== undefined) return toRecord(await this.sqliteWrites.create(row, texts, response));
      const [created] = await this.rows<SessionRow>(this.sql.create(row, texts, response));
      return toRecord(created!);
    });
  }

  /**
   * Takes the session for one run unless another run holds an unexpired lease. `admit` decides
   * whether the caller may have the session at all (it throws to refuse), before anything about
   * the lease is told and without the caller ever holding it: on SQLite in the same group-commit
   * write as the lease (a refusal rolls that write back), on PostgreSQL on the row read first and
   * again on the leased row (a refusal then lets go at once).
   */
  acquire(id: string, owner: string, leaseMs: number, admit: Admit = () => undefined): Promise<LeaseOutcome> {
    return guard(async () => {
      if (this.sqliteWrites !== undefined) {
        const now = Date.now();
        // The row admit saw is the leased one when the lease is taken: made into a record once.
        let seen: SessionRecord | undefined;
        const lease = await this.sqliteWrites.acquire(id, owner, now, now + leaseMs, (row) => admit((seen = toRecord(row))));
        if (lease.status === 'held') return { status: 'held', session: seen! };
        return lease.status === 'busy' ? { status: 'busy', holder: lease.holder } : lease;
      }
      const [found] = await this.rows<SessionRow>(this.sql.get(id));
      if (found === undefined) return { status: 'missing' };
      admit(toRecord(found));
      // The holder may let go between the conditional UPDATE and the look at who holds it: then
      // the session is free, so try again rather than answer "busy" with nobody holding it.
      for (let attempt = 0; ; attempt++) {
        const now = Date.now();
        const [leased] = await this.rows<SessionRow>(this.sql.acquire(id, owner, now, now + leaseMs));
        if (leased !== undefined) {
          const session = toRecord(leased);
          try {
            // Access may have changed between the first read and the lease: decide on the row held.
            admit(session);
          } catch (error) {
            await this.release(id, owner);
            throw error;
          }
          return { status: 'held', session };
        }
        const [current] = await this.rows<HolderRow>(this.sql.holder(id));
        if (current === undefined) return { status: 'missing' };
        const held = current.lease_owner !== null && (current.lease_until ?? 0) > Date.now();
        if (held || attempt >= 2) return { status: 'busy', holder: current.lease_owner };
      }
    });
  }

  /** Extends a lease this owner still holds; false when it was lost (expired and taken, or the session deleted). */
  renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    return guard(async () => {
      const result = await this.db
        .updateTable('sessions')
        .set({ lease_until: Date.now() + leaseMs })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  release(id: string, owner: string): Promise<void> {
    return guard(async () => {
      await this.db
        .updateTable('sessions')
        .set({ lease_owner: null, lease_until: null })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .execute();
    });
  }

  /**
   * A turn's commit: appends the messages (and writes `response`, if any), updates the session and
   * lets go of the lease, atomically (one group-commit write on SQLite, one statement on PostgreSQL). It
   * applies only while `owner` still holds the lease, so a run whose lease expired and was taken by
   * another can never interleave its messages with the other's.
   */
  append(id: string, owner: string, messages: readonly ChatMessage[], changes: SessionChanges, response: ResponseRow | null = null): Promise<AppendOutcome> {
    const texts = messages.map(jsonText);
    const now = Date.now();
    const count = messages.length;
    const rowChanges = {
      systemPrompt: changes.systemPrompt ?? null,
      model: changes.model ?? null,
      metadata: changes.metadata === undefined ? null : JSON.stringify(changes.metadata),
    };
    const notApplied = async (): Promise<AppendOutcome> => {
      const found = await this.rows(this.sql.exists(id));
      return { status: found.length === 0 ? 'missing' : 'lease_lost' };
    };
    return guard(async () => {
      const row =
        this.sqliteWrites !== undefined
          ? await this.sqliteWrites.append(id, owner, now, rowChanges, texts, response)
          : (await this.rows<SessionRow>(this.sql.append(id, owner, count, now, rowChanges, texts, response)))[0];
      return row === undefined ? notApplied() : { status: 'appended', session: toRecord(row) };
    });
  }

  /** The last `limit` messages, oldest first: what a turn sends the model. */
  tail(id: string, limit: number): Promise<ChatMessage[]> {
    return guard(async () => {
      const rows = await this.rows<{ message: string }>(this.sql.tail(id, limit));
      return rows.reverse().map((row) => JSON.parse(row.message) as ChatMessage);
    });
  }

  /**
   * One page of messages, oldest first. With `after`: the first `limit` messages after it. Otherwise
   * the last `limit` messages before `before` (or the end). `hasMore` says whether the next page in
   * that direction has any.
   */
  page(id: string, query: MessagePageQuery): Promise<{ messages: StoredMessage[]; hasMore: boolean }> {
    return guard(async () => {
      let select = this.db.selectFrom('session_messages').select(['seq', 'message', 'created_at']).where('session_id', '=', id);
      if (query.before !== undefined) select = select.where('seq', '<', query.before);
      if (query.after !== undefined) select = select.where('seq', '>', query.after);
      const forward = query.after !== undefined;
      const rows = await select
        .orderBy('seq', forward ? 'asc' : 'desc')
        .limit(query.limit + 1)
        .execute();
      const hasMore = rows.length > query.limit;
      const page = rows.slice(0, query.limit);
      if (!forward) page.reverse();
      return {
        messages: page.map((row) => ({ seq: row.seq, message: JSON.parse(row.message) as ChatMessage, createdAt: row.created_at })),
        hasMore,
      };
    });
  }

  /** An owner's sessions, most recently updated first, `limit` at a time after `cursor`. */
  listOwned(ownerId: string, limit: number, cursor?: OwnedPageCursor): Promise<{ sessions: SessionRecord[]; next?: OwnedPageCursor }> {
    return guard(async () => {
      let select = this.db.selectFrom('sessions').selectAll().where('owner_id', '=', ownerId);
      if (cursor !== undefined) {
        select = select.where((eb) =>
          eb.or([eb('updated_at', '<', cursor.updatedAt), eb.and([eb('updated_at', '=', cursor.updatedAt), eb('id', '<', cursor.id)])]),
        );
      }
      const rows = await select
        .orderBy('updated_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .execute();
      const sessions = rows.slice(0, limit).map(toRecord);
      const last = sessions[sessions.length - 1];
      return { sessions, next: rows.length > limit && last !== undefined ? { updatedAt: last.updatedAt, id: last.id } : undefined };
    });
  }

  /** Replaces the access lists if nobody changed them since `expectedVersion` was read. */
  setAccess(id: string, expectedVersion: number, access: AccessLists): Promise<boolean> {
    return guard(async () => {
      const result = await this.db
        .updateTable('sessions')
        .set((eb) => ({
          is_public: access.isPublic ? 1 : 0,
          whitelist: JSON.stringify(access.whitelist),
          blacklist: JSON.stringify(access.blacklist),
          acl_version: eb('acl_version', '+', 1),
        }))
        .where('id', '=', id)
        .where('acl_version', '=', expectedVersion)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  /** Deletes the session and (by cascade) its messages; false when it did not exist. */
  delete(id: string): Promise<boolean> {
    return guard(async () => {
      const result = await this.db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }
}

function toRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    isPublic: Number(row.is_public) === 1,
    whitelist: JSON.parse(row.whitelist) as string[],
    blacklist: JSON.parse(row.blacklist) as string[],
    aclVersion: Number(row.acl_version),
    systemPrompt: row.system_prompt,
    model: row.model,
    agent: row.agent ?? null,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, unknown>),
    messageCount: Number(row.message_count),
    nextSeq: Number(row.next_seq),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw error instanceof ChassisError ? error : storeUnavailable(error);
  }
}
