import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

/** Writes in one group transaction at most; more wait for the next one (a few microseconds later). */
const MAX_GROUP = 256;

interface Pending {
  work: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Outcome = { value: unknown } | { error: unknown };

/** Thrown out of a group run without savepoints when one of its writes threw. */
const RUN_ISOLATED = new Error('a write of the group threw: run the group again, each write in a savepoint');

/**
 * Group commit for SQLite's hot writes (issue #13). On this embedded database a commit's cost is
 * mostly fixed (WAL frame headers, the wal-index, file locks: about 30 µs of a 50 µs session turn
 * commit), so the writes asked for during one turn of the event loop run as one transaction. A write
 * that throws is rolled back alone and its caller gets the error; the others commit. For that the
 * group first runs without savepoints (two statements per write saved); if any write throws, the
 * whole transaction is rolled back and the group runs again with each write in its own savepoint.
 * A write is deterministic in the database's state (statements, and checks that throw), so running
 * it again after the rollback gives the same outcome. Nobody is answered before the transaction that
 * holds their write has committed, so an acknowledged write is as durable as with a transaction of
 * its own. A write is a synchronous function of better-sqlite3 statements (no await inside). The
 * group holds Kysely's one connection (`db.connection().execute`), so it never lands inside a Kysely
 * transaction of another module.
 */
export class SqliteGroupCommit {
  private pending: Pending[] = [];
  private readonly group: SQLite.Transaction<(batch: readonly Pending[], isolated: boolean) => Outcome[]>;

  constructor(
    sqlite: SQLite.Database,
    private readonly db: Kysely<any>,
    /** Cached prepared statements, shared with Kysely's driver. */
    readonly prepare: (sql: string) => SQLite.Statement,
    /**
     * The same, cached apart, in raw mode: a row comes back as an array of its column values. For
     * rows a write returns: better-sqlite3 builds a row object from C++, one slow property set per
     * column, which on a session turn cost more than the UPDATE that returned it (issue #13).
     */
    readonly prepareRows: (sql: string) => SQLite.Statement,
  ) {
    // Nested in `group`, better-sqlite3 runs it as a savepoint.
    const alone = sqlite.transaction((work: () => unknown) => work());
    this.group = sqlite.transaction((batch: readonly Pending[], isolated: boolean) =>
      batch.map((pending): Outcome => {
        if (!isolated) {
          try {
            return { value: pending.work() };
          } catch {
            // Leaving the group rolls the transaction back (better-sqlite3); flush runs it again isolated.
            throw RUN_ISOLATED;
          }
        }
        try {
          return { value: alone(pending.work) };
        } catch (error) {
          // SQLite rolled the whole transaction back (disk full, I/O error): every write of it failed.
          if (!sqlite.inTransaction) throw error;
          return { error };
        }
      }),
    );
  }

  /** Runs `work` in the next group transaction; resolves once that transaction committed. */
  write<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.push({ work, resolve: resolve as (value: unknown) => void, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0, MAX_GROUP);
    if (this.pending.length > 0) setImmediate(() => this.flush());
    // IMMEDIATE: the write lock is taken at BEGIN (waiting on busy_timeout), never upgraded from a read.
    this.db
      .connection()
      .execute(async () => {
        try {
          return this.group.immediate(batch, false);
        } catch (error) {
          // A transaction that could not start or commit fails the whole group, as before.
          if (error !== RUN_ISOLATED) throw error;
          return this.group.immediate(batch, true);
        }
      })
      .then(
        (outcomes) => outcomes.forEach((outcome, index) => ('error' in outcome ? batch[index]!.reject(outcome.error) : batch[index]!.resolve(outcome.value))),
        (error: unknown) => batch.forEach((pending) => pending.reject(error)),
      );
  }
}
