import type { FastifyBaseLogger } from 'fastify';
import type { Kysely, Migration } from 'kysely';
import type { Database } from '../db/index.js';

const DAY_MS = 86_400_000;
/** A sweep stops after this many batches per kind and goes on at the next interval: bounded work per tick. */
const MAX_BATCHES_PER_SWEEP = 50;

export interface RetentionOptions {
  database: Database;
  /** SESSION_RETENTION_DAYS; 0 keeps sessions forever (the other kinds are pruned regardless). */
  sessionRetentionDays: number;
  batchSize: number;
  log: FastifyBaseLogger;
  /** Epoch ms; tests pass their own clock. */
  now?: () => number;
}

/** Rows deleted by one sweep, by kind. */
export interface SweepResult {
  sessions: number;
  refreshFamilies: number;
  emailCodes: number;
  idempotencyKeys: number;
}

/**
 * Deletes what nobody can use any more: sessions idle past SESSION_RETENTION_DAYS (never one a run
 * holds), refresh-token families past their absolute expiry, used or expired email codes, expired
 * idempotency keys. Each batch is one small statement (or transaction) by primary key, and the
 * sweep yields to the event loop between batches, so requests are never queued behind it (SQLite
 * runs on the main thread) and a PostgreSQL lock is never held for long.
 */
export class Retention {
  private readonly now: () => number;
  private running: Promise<SweepResult> | null = null;

  constructor(private readonly options: RetentionOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Resolves when no sweep is in progress. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** One pass over every kind; concurrent calls share the pass in progress. */
  sweep(): Promise<SweepResult> {
    this.running ??= this.sweepAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async sweepAll(): Promise<SweepResult> {
    const now = this.now();
    const result: SweepResult = {
      sessions: this.options.sessionRetentionDays > 0 ? await this.batches(() => this.idleSessions(now - this.options.sessionRetentionDays * DAY_MS, now)) : 0,
      refreshFamilies: await this.batches(() => this.expiredFamilies(now)),
      emailCodes: await this.batches(() => this.spentCodes(now)),
      idempotencyKeys: await this.batches(() => this.expiredIdempotencyKeys(now)),
    };
    if (Object.values(result).some((count) => count > 0)) this.options.log.info({ deleted: result }, 'retention sweep');
    return result;
  }

  private async batches(deleteBatch: () => Promise<number>): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP; batch++) {
      const deleted = await deleteBatch();
      total += deleted;
      if (deleted < this.options.batchSize) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return total;
  }

  private get db(): Kysely<any> {
    return this.options.database.db as unknown as Kysely<any>;
  }

  private async idleSessions(idleBefore: number, now: number): Promise<number> {
    const rows = await this.db
      .selectFrom('sessions')
      .select('id')
      .where('updated_at', '<', idleBefore)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .limit(this.options.batchSize)
      .execute();
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id as string);
    // Checked again in the delete: a run may have taken the session since the select. Its messages
    // go with it by the foreign key's ON DELETE CASCADE, so a session kept keeps its messages.
    await this.db
      .deleteFrom('sessions')
      .where('id', 'in', ids)
      .where('updated_at', '<', idleBefore)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .execute();
    return rows.length;
  }

  private async expiredFamilies(now: number): Promise<number> {
    const rows = await this.db.selectFrom('refresh_families').select('id').where('expires_at', '<', now).limit(this.options.batchSize).execute();
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id as string);
    // The family's tokens go with it (ON DELETE CASCADE).
    await this.db.deleteFrom('refresh_families').where('id', 'in', ids).execute();
    return rows.length;
  }

  private async spentCodes(now: number): Promise<number> {
    const rows = await this.db
      .selectFrom('email_codes')
      .select(['purpose', 'email'])
      .where((eb) => eb.or([eb('expires_at', '<', now), eb('consumed_at', 'is not', null)]))
      .limit(this.options.batchSize)
      .execute();
    if (rows.length === 0) return 0;
    await this.db
      .deleteFrom('email_codes')
      .where((eb) => eb.or(rows.map((row) => eb.and([eb('purpose', '=', row.purpose), eb('email', '=', row.email)]))))
      .where((eb) => eb.or([eb('expires_at', '<', now), eb('consumed_at', 'is not', null)]))
      .execute();
    return rows.length;
  }

  private async expiredIdempotencyKeys(now: number): Promise<number> {
    const rows = await this.db.selectFrom('idempotency_keys').select(['scope', 'key']).where('expires_at', '<', now).limit(this.options.batchSize).execute();
    if (rows.length === 0) return 0;
    await this.db
      .deleteFrom('idempotency_keys')
      .where((eb) => eb.or(rows.map((row) => eb.and([eb('scope', '=', row.scope), eb('key', '=', row.key)]))))
      .where('expires_at', '<', now)
      .execute();
    return rows.length;
  }
}

/** Indexes the sweeps read by, so a sweep over a large table is a range scan, not a full one. */
export const retentionMigrations: Record<string, Migration> = {
  '2026-12-06-retention-indexes': {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('sessions_updated_idx').on('sessions').column('updated_at').execute();
      await db.schema.createIndex('refresh_families_expires_idx').on('refresh_families').column('expires_at').execute();
      await db.schema.createIndex('email_codes_expires_idx').on('email_codes').column('expires_at').execute();
    },
    async down(db: Kysely<any>) {
      for (const index of ['sessions_updated_idx', 'refresh_families_expires_idx', 'email_codes_expires_idx']) await db.schema.dropIndex(index).execute();
    },
  },
};

/** Sweeps every `intervalSeconds` (first one shortly after start), in the background; stop() waits for a sweep in progress. */
export function scheduleRetention(retention: Retention, intervalSeconds: number, log: FastifyBaseLogger): { stop(): Promise<void> } {
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    retention
      .sweep()
      .catch((error: unknown) => log.warn({ err: error }, 'retention sweep failed; trying again at the next interval'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalSeconds * 1000).unref();
      });
  };
  let timer = setTimeout(tick, Math.min(intervalSeconds, 10) * 1000).unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await retention.idle();
    },
  };
}
