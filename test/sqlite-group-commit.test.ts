import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteGroupCommit } from '../src/db/sqlite-group-commit.js';

describe('SQLite group commit', () => {
  let dir: string;
  let sqlite: SQLite.Database;
  let db: Kysely<any>;
  let group: SqliteGroupCommit;
  const rows = (file = join(dir, 'db.sqlite')) => {
    // A second connection sees only what was committed.
    const reader = new SQLite(file, { readonly: true });
    try {
      return (reader.prepare('select v from t order by v').all() as { v: string }[]).map((row) => row.v);
    } finally {
      reader.close();
    }
  };
  const insert = (v: string) => () => void group.prepare('insert into t (v) values (?)').run(v);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
    sqlite = new SQLite(join(dir, 'db.sqlite'));
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 200');
    sqlite.exec('create table t (v text primary key)');
    db = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) });
    group = new SqliteGroupCommit(sqlite, db, (text) => sqlite.prepare(text), (text) => sqlite.prepare(text).raw(true));
  });
  afterEach(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a write only once it is committed, and returns what the write returned', async () => {
    const value = await group.write(() => {
      insert('a')();
      return 42;
    });
    expect(value).toBe(42);
    expect(rows()).toEqual(['a']);
  });

  it('rolls back only the write that threw; the others of its group commit', async () => {
    const results = await Promise.allSettled([
      group.write(insert('a')),
      group.write(() => {
        insert('b')();
        throw new Error('refused');
      }),
      group.write(insert('a')), // a constraint error: also alone
      group.write(insert('c')),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ message: 'refused' });
    expect(rows()).toEqual(['a', 'c']);
  });

  it('fails every write of a group whose transaction cannot start, and writes none of them', async () => {
    const other = new SQLite(join(dir, 'db.sqlite'));
    other.exec('begin immediate'); // another process holds the write lock past busy_timeout
    try {
      const results = await Promise.allSettled([group.write(insert('x')), group.write(insert('y'))]);
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_BUSY' });
    } finally {
      other.exec('rollback');
      other.close();
    }
    expect(rows()).toEqual([]);
    // And the next group goes through.
    await group.write(insert('z'));
    expect(rows()).toEqual(['z']);
  });

  it('waits for a Kysely transaction on the same connection instead of writing inside it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ v: 'k' }).execute();
      await held;
      throw new Error('rolled back');
    });
    const written = group.write(insert('g'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rows()).toEqual([]); // the group waits for the connection
    release();
    await expect(transaction).rejects.toThrow('rolled back');
    await written;
    expect(rows()).toEqual(['g']); // its rollback did not take the group's write along
  });
});
