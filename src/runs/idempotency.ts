import type { Kysely, Migration } from 'kysely';
import type { Database } from '../db/index.js';
import { storeUnavailable } from '../errors.js';

/** What a retry with the same key gets back: the first response, once the run has ended. */
export interface StoredResponse {
  status: number;
  body: Record<string, unknown>;
}

export interface IdempotencyRecord {
  fingerprint: string;
  runId: string;
  response: StoredResponse | null;
}

/**
 * `Idempotency-Key` bookkeeping, scoped per caller: the first request with a key claims it for its
 * run; a retry finds the claim and gets that run (its saved answer, or its live stream) instead of
 * running the agent twice. Claims expire after `ttlSeconds` (24 h).
 */
export interface IdempotencyStore {
  /** Claims the key for `runId`, or returns the record that holds it. */
  claim(scope: string, key: string, fingerprint: string, runId: string): Promise<IdempotencyRecord | null>;
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  /** Frees a claim whose run never started (e.g. the session was busy), so a retry can run. */
  release(scope: string, key: string): Promise<void>;
  get(scope: string, key: string): Promise<IdempotencyRecord | null>;
}

interface IdempotencyKeysTable {
  scope: string;
  key: string;
  fingerprint: string;
  run_id: string;
  response: string | null;
  created_at: number;
  expires_at: number;
}

declare module '../db/tables.js' {
  interface Tables {
    idempotency_keys: IdempotencyKeysTable;
  }
}

export const idempotencyMigrations: Record<string, Migration> = {
  '2026-11-28c-idempotency-keys': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('scope', 'text', (column) => column.notNull())
        .addColumn('key', 'text', (column) => column.notNull())
        .addColumn('fingerprint', 'text', (column) => column.notNull())
        .addColumn('run_id', 'text', (column) => column.notNull())
        .addColumn('response', 'text')
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .addColumn('expires_at', 'double precision', (column) => column.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
        .execute();
      await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').column('expires_at').execute();
    },
  },
};

/** Claims in the database: atomic across instances (INSERT … ON CONFLICT DO NOTHING), durable across restarts. */
export class DatabaseIdempotencyStore implements IdempotencyStore {
  private lastSweep = 0;

  constructor(
    private readonly database: Database,
    private readonly ttlSeconds: number,
  ) {}

  async claim(scope: string, key: string, fingerprint: string, runId: string): Promise<IdempotencyRecord | null> {
    const now = Date.now();
    const db = this.database.db;
    try {
      await this.sweep(now);
      await db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('expires_at', '<', now).execute();
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({ scope, key, fingerprint, run_id: runId, response: null, created_at: now, expires_at: now + this.ttlSeconds * 1000 })
        .onConflict((conflict) => conflict.columns(['scope', 'key']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return null;
      return await this.get(scope, key);
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  async get(scope: string, key: string): Promise<IdempotencyRecord | null> {
    const row = await this.database.db
      .selectFrom('idempotency_keys')
      .select(['fingerprint', 'run_id', 'response', 'expires_at'])
      .where('scope', '=', scope)
      .where('key', '=', key)
      .executeTakeFirst()
      .catch((error: unknown) => {
        throw storeUnavailable(error);
      });
    if (row === undefined || row.expires_at < Date.now()) return null;
    return { fingerprint: row.fingerprint, runId: row.run_id, response: row.response === null ? null : (JSON.parse(row.response) as StoredResponse) };
  }

  async complete(scope: string, key: string, response: StoredResponse): Promise<void> {
    await this.database.db
      .updateTable('idempotency_keys')
      .set({ response: JSON.stringify(response) })
      .where('scope', '=', scope)
      .where('key', '=', key)
      .execute();
  }

  async release(scope: string, key: string): Promise<void> {
    await this.database.db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('response', 'is', null).execute();
  }

  /** At most once a minute, drop expired claims so the table stays small. */
  private async sweep(now: number): Promise<void> {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    await this.database.db.deleteFrom('idempotency_keys').where('expires_at', '<', now).execute();
  }
}

/** Claims in memory, for a single instance without a database (ENABLE_PERSISTENCE=false). */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, IdempotencyRecord & { expiresAt: number }>();

  constructor(private readonly ttlSeconds: number) {}

  async claim(scope: string, key: string, fingerprint: string, runId: string): Promise<IdempotencyRecord | null> {
    // No await between the lookup and the insert: two parallel claims cannot both win.
    const existing = this.lookup(scope, key);
    if (existing !== null) return existing;
    const now = Date.now();
    this.sweep(now);
    // Deleted first so the map stays in expiry order (a re-set key would keep its old place).
    this.records.delete(id(scope, key));
    this.records.set(id(scope, key), { fingerprint, runId, response: null, expiresAt: now + this.ttlSeconds * 1000 });
    return null;
  }

  async get(scope: string, key: string): Promise<IdempotencyRecord | null> {
    return this.lookup(scope, key);
  }

  private lookup(scope: string, key: string): IdempotencyRecord | null {
    const record = this.records.get(id(scope, key));
    if (record === undefined || record.expiresAt < Date.now()) return null;
    return record;
  }

  async complete(scope: string, key: string, response: StoredResponse): Promise<void> {
    const record = this.records.get(id(scope, key));
    if (record !== undefined) record.response = response;
  }

  async release(scope: string, key: string): Promise<void> {
    const record = this.records.get(id(scope, key));
    if (record !== undefined && record.response === null) this.records.delete(id(scope, key));
  }

  /** Every claim has the same lifetime, so the map is in expiry order: drop from the front only. */
  private sweep(now: number): void {
    for (const [recordId, record] of this.records) {
      if (record.expiresAt >= now) return;
      this.records.delete(recordId);
    }
  }
}

const id = (scope: string, key: string) => `${scope}\u0000${key}`;
