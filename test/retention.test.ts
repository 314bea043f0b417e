import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountMigrations } from '../src/accounts/index.js';
import { migrate, openDatabase, type Database } from '../src/db/index.js';
import { Retention } from '../src/retention/index.js';
import { retentionMigrations } from '../src/retention/index.js';
import { idempotencyMigrations } from '../src/runs/index.js';
import { sessionMigrations } from '../src/sessions/index.js';
import { startApp } from './support/app.js';
import { createPgSchema, storesAvailable } from './support/stores.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const log = pino({ level: 'silent' });
const stores = await storesAvailable();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chassis-retention-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openMigrated(kind: 'sqlite' | 'postgres'): Promise<{ database: Database; drop(): Promise<void> }> {
  const schema = kind === 'postgres' ? await createPgSchema() : undefined;
  const url = schema?.url ?? `sqlite:${join(dir, `${Math.random().toString(36).slice(2)}.db`)}`;
  const database = openDatabase({ url, connectTimeoutSeconds: 5, log });
  await migrate(database, { ...sessionMigrations, ...accountMigrations, ...idempotencyMigrations, ...retentionMigrations });
  return {
    database,
    async drop() {
      await database.close();
      await schema?.drop();
    },
  };
}

const db = (database: Database) => database.db as any;

async function addSession(database: Database, id: string, updatedAt: number, leaseUntil: number | null = null, messages = 2): Promise<void> {
  await db(database)
    .insertInto('sessions')
    .values({ id, owner_id: 'u1', is_public: 0, whitelist: '[]', blacklist: '[]', message_count: messages, next_seq: messages + 1, created_at: updatedAt, updated_at: updatedAt, lease_owner: leaseUntil === null ? null : 'run_x', lease_until: leaseUntil })
    .execute();
  for (let seq = 1; seq <= messages; seq++) {
    await db(database).insertInto('session_messages').values({ session_id: id, seq, message: '{"role":"user","content":"hi"}', created_at: updatedAt }).execute();
  }
}

const ids = async (database: Database, table: string, column = 'id') => (await db(database).selectFrom(table).select(column).orderBy(column).execute()).map((row: any) => row[column]);
const count = async (database: Database, table: string) => Number((await db(database).selectFrom(table).select((eb: any) => eb.fn.countAll().as('n')).executeTakeFirst()).n);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !stores.pg)(`retention on ${kind}`, () => {
    it('deletes sessions idle past SESSION_RETENTION_DAYS with their messages, never a held or a recent one, in batches', async () => {
      const { database, drop } = await openMigrated(kind);
      try {
        let now = T0;
        for (let index = 0; index < 5; index++) await addSession(database, `old-${index}`, T0 - 40 * DAY);
        await addSession(database, 'held', T0 - 40 * DAY, T0 + DAY + 60_000);
        await addSession(database, 'edge', T0 - 30 * DAY + 1); // idle 30 days less 1 ms: kept
        await addSession(database, 'recent', T0 - DAY);
        const retention = new Retention({ database, sessionRetentionDays: 30, batchSize: 2, log, now: () => now });
        expect((await retention.sweep()).sessions).toBe(5);
        expect(await ids(database, 'sessions')).toEqual(['edge', 'held', 'recent']);
        expect(await count(database, 'session_messages')).toBe(6);

        // A day later the edge session is past the limit; the held one still has its lease.
        now = T0 + DAY;
        expect((await retention.sweep()).sessions).toBe(1);
        expect(await ids(database, 'sessions')).toEqual(['held', 'recent']);
        // Once its lease has run out, the held session goes too.
        now = T0 + 2 * DAY;
        await retention.sweep();
        expect(await ids(database, 'sessions')).toEqual(['recent']);
        expect(await count(database, 'session_messages')).toBe(2);
      } finally {
        await drop();
      }
    });

    it('keeps every session when SESSION_RETENTION_DAYS is 0 (the default)', async () => {
      const { database, drop } = await openMigrated(kind);
      try {
        await addSession(database, 'ancient', T0 - 3650 * DAY);
        const retention = new Retention({ database, sessionRetentionDays: 0, batchSize: 100, log, now: () => T0 });
        expect((await retention.sweep()).sessions).toBe(0);
        expect(await ids(database, 'sessions')).toEqual(['ancient']);
      } finally {
        await drop();
      }
    });

    it('prunes expired refresh-token families, used or expired codes and expired idempotency keys, keeping live ones', async () => {
      const { database, drop } = await openMigrated(kind);
      try {
        const now = T0;
        await db(database).insertInto('users').values({ id: 'u1', email: 'a@example.com', email_verified: 1, is_admin: 0, disabled: 0, token_version: 0, created_at: 0, updated_at: 0 }).execute();
        await db(database).insertInto('refresh_families').values([
          { id: 'f-expired', user_id: 'u1', created_at: 0, expires_at: now - 1, revoked_at: null },
          { id: 'f-live', user_id: 'u1', created_at: 0, expires_at: now + DAY, revoked_at: null },
        ]).execute();
        await db(database).insertInto('refresh_tokens').values([
          { id: 't1', family_id: 'f-expired', parent_id: null, token_hash: 'h1', created_at: 0, rotated_at: 1 },
          { id: 't2', family_id: 'f-expired', parent_id: 't1', token_hash: 'h2', created_at: 1, rotated_at: null },
          { id: 't3', family_id: 'f-live', parent_id: null, token_hash: 'h3', created_at: 0, rotated_at: null },
        ]).execute();
        await db(database).insertInto('email_codes').values([
          { purpose: 'verify', email: 'used@example.com', code_hmac: 'x', expires_at: now + DAY, attempts: 0, consumed_at: now - 5, created_at: 0 },
          { purpose: 'verify', email: 'old@example.com', code_hmac: 'x', expires_at: now - 1, attempts: 0, consumed_at: null, created_at: 0 },
          { purpose: 'reset', email: 'used@example.com', code_hmac: 'x', expires_at: now + DAY, attempts: 0, consumed_at: null, created_at: 0 },
        ]).execute();
        await db(database).insertInto('idempotency_keys').values([
          { scope: 's', key: 'old', fingerprint: 'f', run_id: 'r1', response: null, created_at: 0, expires_at: now - 1 },
          { scope: 's', key: 'live', fingerprint: 'f', run_id: 'r2', response: null, created_at: 0, expires_at: now + 1 },
        ]).execute();
        const result = await new Retention({ database, sessionRetentionDays: 0, batchSize: 1, log, now: () => now }).sweep();
        expect(result).toEqual({ sessions: 0, refreshFamilies: 1, emailCodes: 2, idempotencyKeys: 1 });
        expect(await ids(database, 'refresh_families')).toEqual(['f-live']);
        expect(await ids(database, 'refresh_tokens')).toEqual(['t3']);
        expect(await ids(database, 'email_codes', 'purpose')).toEqual(['reset']);
        expect(await ids(database, 'idempotency_keys', 'key')).toEqual(['live']);
      } finally {
        await drop();
      }
    });
  });
}

describe('retention in the server', () => {
  it('lets other work run between batches (SQLite runs on the main thread)', async () => {
    const { database, drop } = await openMigrated('sqlite');
    try {
      for (let index = 0; index < 6; index++) await addSession(database, `old-${index}`, T0 - 40 * DAY);
      const retention = new Retention({ database, sessionRetentionDays: 1, batchSize: 1, log, now: () => T0 });
      // Counts turns of the event loop (a timer would need a whole millisecond to pass, and a fast
      // sweep of six rows takes less): each check phase the sweep lets through adds one.
      let ticks = 0;
      let ticking = true;
      const tick = () => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const sweep = retention.sweep();
      let ticksWhileSweeping = 0;
      void sweep.then(() => (ticksWhileSweeping = ticks));
      await sweep;
      ticking = false;
      expect(await count(database, 'sessions')).toBe(0);
      expect(ticksWhileSweeping).toBeGreaterThan(0);
    } finally {
      await drop();
    }
  });

  it('runs on its own when SESSION_RETENTION_DAYS is set', async () => {
    const path = join(dir, 'app.db');
    const t = await startApp({ ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${path}`, SESSION_RETENTION_DAYS: '1', RETENTION_INTERVAL_SECONDS: '1' });
    // A second connection to the app's file (it migrated it), to plant rows and watch them go.
    const database = openDatabase({ url: `sqlite:${path}`, connectTimeoutSeconds: 5, log });
    try {
      await addSession(database, 'stale', Date.now() - 2 * DAY);
      await addSession(database, 'fresh', Date.now());
      const deadline = Date.now() + 10_000;
      while ((await ids(database, 'sessions')).includes('stale') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await ids(database, 'sessions')).toEqual(['fresh']);
    } finally {
      await database.close();
      await t.close();
    }
  });
});
