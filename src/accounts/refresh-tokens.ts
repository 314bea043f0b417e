import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Tables } from '../db/index.js';
import { guarded } from './store-errors.js';

export interface RefreshTokenOptions {
  successorKey: Buffer;
  /** Absolute lifetime of a family, from login. */
  lifetimeMs: number;
  /** Grace for a token presented again just after it was rotated; 0 = none. */
  reuseIntervalMs: number;
}

export type RefreshOutcome =
  | { kind: 'rotated'; token: string; userId: string; familyId: string }
  | { kind: 'invalid' }
  /** A rotated token came back after the grace window: the family is now revoked. */
  | { kind: 'reused'; userId: string; familyId: string };

const PREFIX = 'rt_';
const TOKEN_FORMAT = /^rt_[A-Za-z0-9_-]{43}$/;

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Opaque refresh tokens (256 random bits), stored only as SHA-256, grouped in families (one per
 * login). Every refresh rotates: the presented token is marked rotated and its successor becomes the
 * family's live token, in one transaction with a conditional UPDATE, so only one caller rotates it.
 *
 * The successor is HMAC(server key, token): whoever presents the same token within the grace window
 * (two tabs refreshing at once) gets the same successor back without the server ever storing a raw
 * token. Presented after the window, a rotated token means it was copied: the family is revoked.
 */
export class RefreshTokens {
  constructor(
    private readonly db: Kysely<Tables>,
    private readonly options: RefreshTokenOptions,
  ) {}

  /** A new family (a login) and its first token. */
  async start(userId: string): Promise<{ token: string; familyId: string }> {
    const now = Date.now();
    const familyId = randomUUID();
    const token = PREFIX + randomBytes(32).toString('base64url');
    await guarded(() =>
      this.db.transaction().execute(async (trx) => {
        await trx.insertInto('refresh_families').values({ id: familyId, user_id: userId, created_at: now, expires_at: now + this.options.lifetimeMs, revoked_at: null }).execute();
        await trx.insertInto('refresh_tokens').values({ id: randomUUID(), family_id: familyId, parent_id: null, token_hash: sha256(token), created_at: now, rotated_at: null }).execute();
      }),
    );
    return { token, familyId };
  }

  async rotate(token: string): Promise<RefreshOutcome> {
    if (!TOKEN_FORMAT.test(token)) return { kind: 'invalid' };
    const now = Date.now();
    const found = await this.find(sha256(token));
    if (found === undefined || found.revoked_at !== null || found.expires_at <= now) return { kind: 'invalid' };
    const { user_id: userId, family_id: familyId } = found;
    const successor = this.successorOf(token);
    let rotatedAt = found.rotated_at;
    if (rotatedAt === null) {
      const won = await guarded(() =>
        this.db.transaction().execute(async (trx) => {
          const marked = await trx.updateTable('refresh_tokens').set({ rotated_at: now }).where('id', '=', found.id).where('rotated_at', 'is', null).executeTakeFirst();
          if (marked.numUpdatedRows !== 1n) return false;
          await trx.insertInto('refresh_tokens').values({ id: randomUUID(), family_id: familyId, parent_id: found.id, token_hash: sha256(successor), created_at: now, rotated_at: null }).execute();
          return true;
        }),
      );
      if (won) return { kind: 'rotated', token: successor, userId, familyId };
      // Another request rotated it a moment ago: treat this one as a replay within the grace window.
      rotatedAt = (await this.find(sha256(token)))?.rotated_at ?? now;
    }
    if (this.options.reuseIntervalMs > 0 && now - rotatedAt <= this.options.reuseIntervalMs) {
      const next = await this.find(sha256(successor));
      if (next !== undefined && next.rotated_at === null && next.revoked_at === null) return { kind: 'rotated', token: successor, userId, familyId };
    }
    await this.revokeFamily(familyId);
    return { kind: 'reused', userId, familyId };
  }

  /** Logout: ends the token's family; unknown tokens are ignored (idempotent). */
  async revokeFamilyOf(token: string): Promise<void> {
    if (!TOKEN_FORMAT.test(token)) return;
    const found = await this.find(sha256(token));
    if (found !== undefined) await this.revokeFamily(found.family_id);
  }

  async revokeAllOf(userId: string): Promise<void> {
    await guarded(() => this.db.updateTable('refresh_families').set({ revoked_at: Date.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute());
  }

  private async revokeFamily(familyId: string): Promise<void> {
    await guarded(() => this.db.updateTable('refresh_families').set({ revoked_at: Date.now() }).where('id', '=', familyId).where('revoked_at', 'is', null).execute());
  }

  private successorOf(token: string): string {
    return PREFIX + createHmac('sha256', this.options.successorKey).update(token, 'utf8').digest('base64url');
  }

  private find(tokenHash: string) {
    return guarded(() =>
      this.db
        .selectFrom('refresh_tokens as token')
        .innerJoin('refresh_families as family', 'family.id', 'token.family_id')
        .select(['token.id', 'token.family_id', 'token.rotated_at', 'family.user_id', 'family.expires_at', 'family.revoked_at'])
        .where('token.token_hash', '=', tokenHash)
        .executeTakeFirst(),
    );
  }
}
