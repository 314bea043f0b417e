import type { Kysely, Selectable, Transaction } from 'kysely';
import { ChassisError } from '../errors.js';
import type { Database, Tables } from '../db/index.js';
import { storeUnavailable } from '../errors.js';
import type { ChatMessage } from '../model/types.js';
import type { SessionsTable } from './tables.js';

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

type SessionRow = Selectable<SessionsTable>;

/**
 * Sessions over Kysely, the same queries on SQLite and PostgreSQL. Messages are append-only rows:
 * a turn inserts its own messages and bumps the session row in one transaction, so its cost does
 * not grow with the history. Every write that opens a transaction starts with a write (never a read
 * that later upgrades), so SQLite takes its write lock at once and waits on busy_timeout.
 * Any store failure surfaces as 503 STORE_UNAVAILABLE.
 */
export class SessionStore {
  private readonly db: Kysely<Tables>;

  constructor(database: Database) {
    this.db = database.db;
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return guard(async () => {
      const row = await this.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toRecord(row);
    });
  }

  /** Creates the session with its first messages, atomically. */
  create(session: NewSession, messages: readonly ChatMessage[]): Promise<SessionRecord> {
    return guard(() =>
      this.db.transaction().execute(async (trx) => {
        const now = Date.now();
        const row = await trx
          .insertInto('sessions')
          .values({
            id: session.id,
            owner_id: session.ownerId,
            is_public: 0,
            whitelist: '[]',
            blacklist: '[]',
            system_prompt: session.systemPrompt ?? null,
            model: session.model ?? null,
            agent: session.agent ?? null,
            metadata: session.metadata === undefined ? null : JSON.stringify(session.metadata),
            message_count: messages.length,
            next_seq: messages.length + 1,
            created_at: now,
            updated_at: now,
            lease_owner: null,
            lease_until: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertMessages(trx, session.id, 1, messages, now);
        return toRecord(row);
      }),
    );
  }

  /** Takes the session for one run unless another run holds an unexpired lease. */
  acquire(id: string, owner: string, leaseMs: number): Promise<LeaseOutcome> {
    return guard(async () => {
      // The holder may let go between the conditional UPDATE and the look at who holds it: then
      // the session is free, so try again rather than answer "busy" with nobody holding it.
      for (let attempt = 0; ; attempt++) {
        const now = Date.now();
        const row = await this.db
          .updateTable('sessions')
          .set({ lease_owner: owner, lease_until: now + leaseMs })
          .where('id', '=', id)
          .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_until', '<=', now)]))
          .returningAll()
          .executeTakeFirst();
        if (row !== undefined) return { status: 'held', session: toRecord(row) };
        const current = await this.db.selectFrom('sessions').select(['lease_owner', 'lease_until']).where('id', '=', id).executeTakeFirst();
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
   * A turn's commit: appends the messages, updates the session and lets go of the lease, in one
   * transaction. It applies only while `owner` still holds the lease, so a run whose lease expired
   * and was taken by another can never interleave its messages with the other's.
   */
  append(id: string, owner: string, messages: readonly ChatMessage[], changes: SessionChanges): Promise<AppendOutcome> {
    return guard(() =>
      this.db.transaction().execute(async (trx): Promise<AppendOutcome> => {
        const now = Date.now();
        const count = messages.length;
        const row = await trx
          .updateTable('sessions')
          .set((eb) => ({
            next_seq: eb('next_seq', '+', count),
            message_count: eb('message_count', '+', count),
            updated_at: now,
            lease_owner: null,
            lease_until: null,
            ...(changes.systemPrompt === undefined ? {} : { system_prompt: changes.systemPrompt }),
            ...(changes.model === undefined ? {} : { model: changes.model }),
            ...(changes.metadata === undefined ? {} : { metadata: JSON.stringify(changes.metadata) }),
          }))
          .where('id', '=', id)
          .where('lease_owner', '=', owner)
          .returningAll()
          .executeTakeFirst();
        if (row === undefined) {
          const exists = await trx.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst();
          return { status: exists === undefined ? 'missing' : 'lease_lost' };
        }
        await insertMessages(trx, id, row.next_seq - count, messages, now);
        return { status: 'appended', session: toRecord(row) };
      }),
    );
  }

  /** The last `limit` messages, oldest first: what a turn sends the model. */
  tail(id: string, limit: number): Promise<ChatMessage[]> {
    return guard(async () => {
      const rows = await this.db
        .selectFrom('session_messages')
        .select('message')
        .where('session_id', '=', id)
        .orderBy('seq', 'desc')
        .limit(limit)
        .execute();
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

async function insertMessages(trx: Transaction<Tables>, sessionId: string, firstSeq: number, messages: readonly ChatMessage[], now: number) {
  if (messages.length === 0) return;
  await trx
    .insertInto('session_messages')
    .values(messages.map((message, index) => ({ session_id: sessionId, seq: firstSeq + index, message: JSON.stringify(message), created_at: now })))
    .execute();
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
