import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Tables } from '../db/index.js';
import { guarded } from './store-errors.js';

export type CodePurpose = 'verify_email' | 'password_reset';

export interface EmailCodeOptions {
  key: Buffer;
  expireMinutes: number;
  maxAttempts: number;
}

/**
 * Six-digit codes sent by mail. Only HMAC(server key, purpose‖email‖code) is stored: a plain hash of
 * a 6-digit code falls to 10^6 guesses, a keyed one needs the server key. A code is bound to its
 * purpose and email, lives a fixed time (tries never extend it), allows `maxAttempts` tries counted
 * atomically, and is consumed by a conditional UPDATE so only one concurrent caller can use it.
 */
export class EmailCodes {
  constructor(
    private readonly db: Kysely<Tables>,
    private readonly options: EmailCodeOptions,
  ) {}

  /** A fresh code; the previous one for this purpose and email stops working. */
  async issue(purpose: CodePurpose, email: string): Promise<string> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const now = Date.now();
    const row = { code_hmac: this.hmac(purpose, email, code), expires_at: now + this.options.expireMinutes * 60_000, attempts: 0, consumed_at: null, created_at: now };
    await guarded(() =>
      this.db
        .insertInto('email_codes')
        .values({ purpose, email, ...row })
        .onConflict((conflict) => conflict.columns(['purpose', 'email']).doUpdateSet(row))
        .execute(),
    );
    return code;
  }

  /** True exactly once for the right code; every try counts against the code's attempts. */
  async consume(purpose: CodePurpose, email: string, code: string): Promise<boolean> {
    const now = Date.now();
    // Count the try first, and only while the code is alive: parallel tries cannot exceed the limit.
    const live = await guarded(() =>
      this.db
        .updateTable('email_codes')
        .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
        .where('purpose', '=', purpose)
        .where('email', '=', email)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .where('attempts', '<', this.options.maxAttempts)
        .returning(['code_hmac'])
        .executeTakeFirst(),
    );
    if (live === undefined) return false;
    const given = this.hmac(purpose, email, code);
    if (!timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(live.code_hmac, 'hex'))) return false;
    const used = await guarded(() =>
      this.db
        .updateTable('email_codes')
        .set({ consumed_at: now })
        .where('purpose', '=', purpose)
        .where('email', '=', email)
        .where('code_hmac', '=', given)
        .where('consumed_at', 'is', null)
        .executeTakeFirst(),
    );
    return used.numUpdatedRows === 1n;
  }

  private hmac(purpose: CodePurpose, email: string, code: string): string {
    // NUL separators: no purpose/email/code split can collide with another.
    return createHmac('sha256', this.options.key).update(`${purpose}\0${email}\0${code}`, 'utf8').digest('hex');
  }
}
