// WAL checkpoints run on a worker thread (issue #13): committed pages reach the database file
// without a commit on the event loop having to copy them and fsync.

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../src/sessions/index.js';
import { openSessionDatabase } from './support/sessions.js';

const dir = mkdtempSync(join(tmpdir(), 'checkpointer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The sessions found in a copy of the database file alone, without its WAL. */
function sessionsInMainFile(file: string, copy: string): string[] {
  copyFileSync(file, copy);
  const db = new SQLite(copy);
  try {
    return (db.prepare('select id from sessions').all() as { id: string }[]).map((row) => row.id);
  } catch {
    return []; // not even the table has reached the file yet
  } finally {
    db.close();
    rmSync(`${copy}-wal`, { force: true });
    rmSync(`${copy}-shm`, { force: true });
  }
}

describe('SQLite background checkpoints', () => {
  it('move a small commit from the WAL into the database file within a second, off the main connection', async () => {
    const file = join(dir, 'db.sqlite');
    const database = await openSessionDatabase(`sqlite:${file}`);
    try {
      // The main connection never checkpoints by itself (SQLite's default would wait for 1,000 pages).
      const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(database.db);
      expect(rows[0]?.wal_autocheckpoint).toBe(0);
      const store = new SessionStore(database);
      await store.create({ id: 'checkpointed', ownerId: null }, [{ role: 'user', content: 'hi' }]);
      const deadline = Date.now() + 3_000;
      let found: string[] = [];
      while (Date.now() < deadline) {
        found = sessionsInMainFile(file, join(dir, 'copy.sqlite'));
        if (found.includes('checkpointed')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(found).toContain('checkpointed');
    } finally {
      await database.close();
    }
  });

  it('closes cleanly: the database is whole and the WAL gone after close', async () => {
    const file = join(dir, 'closed.sqlite');
    const database = await openSessionDatabase(`sqlite:${file}`);
    await new SessionStore(database).create({ id: 'kept', ownerId: null }, [{ role: 'user', content: 'hi' }]);
    await database.close();
    expect(sessionsInMainFile(file, join(dir, 'closed-copy.sqlite'))).toEqual(['kept']);
  });
});
