import type { SqliteGroupCommit } from '../db/sqlite-group-commit.js';
import { sessionRowOf, type HolderRow, type NewSessionRow, type ResponseRow, type RowChanges, type SessionRow, type SessionSql, type SqlQuery } from './session-sql.js';

/** Messages per INSERT: 4 parameters each, far below SQLite's 32,766-parameter limit. */
const INSERT_BATCH = 256;

/** What the lease write found, in rows: `held` carries the leased row, `busy` the current one. */
export type SqliteLease = { status: 'held'; row: SessionRow } | { status: 'busy'; row: HolderRow; holder: string | null } | { status: 'missing' };

/**
 * A session turn's writes on SQLite — take the lease, create the session, append a turn (with the
 * OpenAI response that names where it ends, if any) — each a synchronous function of cached
 * prepared statements (a write, then the row read back: see SessionSql), run by the group commit
 * (one transaction for all the turns that write in the same loop turn; a write that throws is
 * rolled back alone). No promise per statement and no query building: this is the whole database
 * cost of a turn on the embedded default (issue #13).
 */
export class SqliteTurnWrites {
  constructor(
    private readonly group: SqliteGroupCommit,
    private readonly sql: SessionSql,
  ) {}

  /**
   * Takes the lease unless another run holds it; `admit` sees the row first (the leased one, or the
   * current one when busy) and throws to refuse: the group commit then rolls back that write, lease included,
   * so a caller without access never holds — or learns who holds — anyone's session.
   */
  acquire(id: string, owner: string, now: number, until: number, admit: (row: SessionRow) => void): Promise<SqliteLease> {
    return this.group.write(() => {
      const taken = this.run(this.sql.acquire(id, owner, now, until)) > 0;
      // Inside the write transaction nothing moves: the row read now is the one leased, or the one that refused the lease.
      const row = this.row(this.sql.holder(id));
      if (row === undefined) return { status: 'missing' };
      admit(row);
      return taken ? { status: 'held', row } : { status: 'busy', row, holder: row.lease_owner };
    });
  }

  create(row: NewSessionRow, texts: readonly string[], response: ResponseRow | null): Promise<SessionRow> {
    return this.group.write(() => {
      this.run(this.sql.create(row, texts, response));
      const created = this.row(this.sql.get(row.id))!;
      this.insert(row.id, 1, texts, row.now, Number(created.next_seq), response);
      return created;
    });
  }

  /** Undefined when the update matched nothing (the lease is not this owner's, or no session). */
  append(id: string, owner: string, now: number, changes: RowChanges, texts: readonly string[], response: ResponseRow | null): Promise<SessionRow | undefined> {
    return this.group.write(() => {
      if (this.run(this.sql.append(id, owner, texts.length, now, changes, texts, response)) === 0) return undefined;
      const updated = this.row(this.sql.get(id))!;
      this.insert(id, Number(updated.next_seq) - texts.length, texts, now, Number(updated.next_seq), response);
      return updated;
    });
  }

  /** The session row, if any (read raw: see SqliteGroupCommit.prepareRows). */
  private row(query: SqlQuery): HolderRow | undefined {
    const values = this.group.prepareRows(query.sql).get(query.parameters) as unknown[] | undefined;
    return values === undefined ? undefined : sessionRowOf(values);
  }

  /** The turn's messages, numbered from `firstSeq`, and its response (if any) at `nextSeq`, the end of the history after them. */
  private insert(id: string, firstSeq: number, texts: readonly string[], now: number, nextSeq: number, response: ResponseRow | null): void {
    for (let from = 0; from < texts.length; from += INSERT_BATCH) this.run(this.sql.insertMessages(id, firstSeq + from, texts.slice(from, from + INSERT_BATCH), now));
    if (response !== null) this.run(this.sql.insertResponse(id, nextSeq, now, response));
  }

  /** How many rows the statement changed. */
  private run(query: SqlQuery): number {
    return this.group.prepare(query.sql).run(query.parameters).changes;
  }
}
