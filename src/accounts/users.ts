import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Tables } from '../db/index.js';
import type { UserRow } from './tables.js';
import { guarded } from './store-errors.js';

export type User = UserRow;

/** Only these fields can be set at creation: privileged ones (is_admin, disabled) never come from a request. */
export interface NewUser {
  email: string;
  passwordHash: string | null;
  emailVerified: boolean;
  googleId: string | null;
  displayName: string | null;
}

export class UserStore {
  constructor(private readonly db: Kysely<Tables>) {}

  byId(id: string): Promise<User | undefined> {
    return guarded(() => this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst());
  }

  byEmail(email: string): Promise<User | undefined> {
    return guarded(() => this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst());
  }

  byGoogleId(googleId: string): Promise<User | undefined> {
    return guarded(() => this.db.selectFrom('users').selectAll().where('google_id', '=', googleId).executeTakeFirst());
  }

  /** What an access token is checked against on every request: the user, and the token's refresh family. */
  accessState(userId: string, familyId: string) {
    return guarded(() =>
      this.db
        .selectFrom('users')
        .leftJoin('refresh_families as family', (join) => join.onRef('family.user_id', '=', 'users.id').on('family.id', '=', familyId))
        .select(['users.token_version', 'users.disabled', 'family.id as family_id', 'family.revoked_at'])
        .where('users.id', '=', userId)
        .executeTakeFirst(),
    );
  }

  /** Throws UniqueViolation when the email (or Google account) is taken. */
  async create(user: NewUser): Promise<User> {
    const now = Date.now();
    const row: User = {
      id: randomUUID(),
      email: user.email,
      password_hash: user.passwordHash,
      email_verified: user.emailVerified ? 1 : 0,
      google_id: user.googleId,
      display_name: user.displayName,
      is_admin: 0,
      disabled: 0,
      token_version: 0,
      created_at: now,
      updated_at: now,
    };
    await guarded(() => this.db.insertInto('users').values(row).execute());
    return row;
  }

  async markEmailVerified(email: string): Promise<void> {
    await guarded(() => this.db.updateTable('users').set({ email_verified: 1, updated_at: Date.now() }).where('email', '=', email).execute());
  }

  /**
   * A repeated sign-up on an account nobody has verified: the latest sign-up's password and name
   * replace the earlier ones (see register). Only while still unverified; false if it was verified meanwhile.
   */
  async replaceUnverifiedSignUp(id: string, passwordHash: string, displayName: string | null): Promise<boolean> {
    const result = await guarded(() =>
      this.db
        .updateTable('users')
        .set((eb) => ({ password_hash: passwordHash, display_name: displayName, token_version: eb('token_version', '+', 1), updated_at: Date.now() }))
        .where('id', '=', id)
        .where('email_verified', '=', 0)
        .where('google_id', 'is', null)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows === 1n;
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await guarded(() => this.db.updateTable('users').set({ password_hash: passwordHash, updated_at: Date.now() }).where('id', '=', id).execute());
  }

  /** A reset proves control of the mailbox: new hash, email verified, every older access token void. */
  async resetPassword(id: string, passwordHash: string): Promise<void> {
    await guarded(() =>
      this.db
        .updateTable('users')
        .set((eb) => ({ password_hash: passwordHash, email_verified: 1, token_version: eb('token_version', '+', 1), updated_at: Date.now() }))
        .where('id', '=', id)
        .execute(),
    );
  }

  /**
   * Links a Google account. When the existing account's email was never verified, its password may
   * have been set by someone else (pre-registration takeover), so it is dropped: Google proved the
   * mailbox, the stranger's password must not survive the link. Returns false if the row changed meanwhile.
   */
  async linkGoogle(user: User, googleId: string): Promise<boolean> {
    const result = await guarded(() =>
      this.db
        .updateTable('users')
        .set({ google_id: googleId, email_verified: 1, password_hash: user.email_verified === 1 ? user.password_hash : null, updated_at: Date.now() })
        .where('id', '=', user.id)
        .where('google_id', 'is', null)
        // Decided on the row as read: if it was verified (or a sign-up replaced its password) meanwhile, the caller retries.
        .where('email_verified', '=', user.email_verified)
        .where('password_hash', user.password_hash === null ? 'is' : '=', user.password_hash)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows === 1n;
  }
}
