import type { Kysely } from 'kysely';
import type { Tables } from '../db/index.js';
import { guarded } from './store-errors.js';

export interface UserAccessChange {
  id: string;
  email: string;
  disabled: boolean;
  /** Refresh-token families (logins) revoked by this change. */
  sessionsEnded: number;
}

/**
 * Disables or re-enables a user, found by id or by email. Disabling ends every login at once: the
 * token version goes up (access tokens already issued stop verifying on their next request) and
 * every live refresh family is revoked, in one transaction. Re-enabling brings no login back: the
 * user signs in again. Undefined when no such user exists.
 */
export async function setUserDisabled(db: Kysely<Tables>, user: string, disabled: boolean, now = Date.now()): Promise<UserAccessChange | undefined> {
  return guarded(() =>
    db.transaction().execute(async (trx) => {
      const found = await trx
        .selectFrom('users')
        .select(['id', 'email'])
        .where(user.includes('@') ? 'email' : 'id', '=', user.includes('@') ? user.trim().toLowerCase() : user)
        .executeTakeFirst();
      if (found === undefined) return undefined;
      let sessionsEnded = 0;
      if (disabled) {
        await trx
          .updateTable('users')
          .set((eb) => ({ disabled: 1, token_version: eb('token_version', '+', 1), updated_at: now }))
          .where('id', '=', found.id)
          .execute();
        const revoked = await trx.updateTable('refresh_families').set({ revoked_at: now }).where('user_id', '=', found.id).where('revoked_at', 'is', null).executeTakeFirst();
        sessionsEnded = Number(revoked.numUpdatedRows);
      } else {
        await trx.updateTable('users').set({ disabled: 0, updated_at: now }).where('id', '=', found.id).execute();
      }
      return { id: found.id, email: found.email, disabled, sessionsEnded };
    }),
  );
}
