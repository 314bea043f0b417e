import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Tables } from '../db/index.js';
import type { NewSessionRow, RowChanges, SessionSql } from './session-sql.js';

/**
 * A turn's commit on SQLite as one synchronous better-sqlite3 transaction: the session row and the
 * messages in a few microseconds, with no promise per statement (Kysely's transaction costs four
 * round trips through its driver and more CPU than the SQL). It runs while holding Kysely's single
 * connection (`db.connection().execute`), so it never lands inside a Kysely transaction of another
 * module. A throw rolls the whole transaction back. Returns the session row, or undefined when the
 * update matched nothing (no lease, or no session).
 */
export class SqliteCommit {
  private statements?: {
    create: SQLite.Statement;
    append: SQLite.Statement;
    insert: Map<number, SQLite.Statement>;
    createTx: SQLite.Transaction<(row: NewSessionRow, texts: readonly string[]) => unknown>;
    appendTx: SQLite.Transaction<(id: string, owner: string, now: number, changes: RowChanges, texts: readonly string[]) => unknown>;
  };

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly db: Kysely<Tables>,
    private readonly sql: SessionSql,
  ) {}

  create<Row>(row: NewSessionRow, texts: readonly string[]): Promise<Row> {
    return this.db.connection().execute(async () => this.prepared().createTx(row, texts) as Row);
  }

  append<Row>(id: string, owner: string, now: number, changes: RowChanges, texts: readonly string[]): Promise<Row | undefined> {
    return this.db.connection().execute(async () => this.prepared().appendTx(id, owner, now, changes, texts) as Row | undefined);
  }

  /** Prepared on first use: the tables exist only once migrations have run. */
  private prepared() {
    if (this.statements !== undefined) return this.statements;
    const create = this.sqlite.prepare(this.sql.create({ id: '', ownerId: null, systemPrompt: null, model: null, agent: null, metadata: null, count: 0, now: 0 }, []).sql);
    const append = this.sqlite.prepare(this.sql.append('', '', 0, 0, { systemPrompt: null, model: null, metadata: null }, []).sql);
    const insert = new Map<number, SQLite.Statement>();
    const insertMessages = (id: string, firstSeq: number, texts: readonly string[], now: number) => {
      const { sql, parameters } = this.sql.insertMessages(id, firstSeq, texts, now);
      let statement = insert.get(texts.length);
      if (statement === undefined) {
        statement = this.sqlite.prepare(sql);
        if (texts.length <= 32) insert.set(texts.length, statement);
      }
      statement.run(parameters);
    };
    const insertAll = (id: string, firstSeq: number, texts: readonly string[], now: number) => {
      for (let from = 0; from < texts.length; from += INSERT_BATCH) insertMessages(id, firstSeq + from, texts.slice(from, from + INSERT_BATCH), now);
    };
    const createTx = this.sqlite.transaction((row: NewSessionRow, texts: readonly string[]) => {
      const created = create.get(this.sql.create(row, texts).parameters);
      insertAll(row.id, 1, texts, row.now);
      return created;
    });
    const appendTx = this.sqlite.transaction((id: string, owner: string, now: number, changes: RowChanges, texts: readonly string[]) => {
      const updated = append.get(this.sql.append(id, owner, texts.length, now, changes, texts).parameters) as { next_seq: number } | undefined;
      if (updated !== undefined) insertAll(id, Number(updated.next_seq) - texts.length, texts, now);
      return updated;
    });
    this.statements = { create, append, insert, createTx, appendTx };
    return this.statements;
  }
}

/** Messages per INSERT: 4 parameters each, far below SQLite's 32,766-parameter limit. */
export const INSERT_BATCH = 256;
