import type { Accounts, AccountsOptions } from './create-accounts.js';

export { accountMigrations } from './tables.js';
export { PASSWORD_MAX_LENGTH } from './password-limits.js';
export type { Caller, TokenResponse } from './context.js';
export type { Accounts, AccountsOptions } from './create-accounts.js';

/**
 * The account flows, bound to this app's stores. Their libraries (argon2, bcrypt, jose, the
 * common-password list, nodemailer) load here, on first use, so a server without
 * ENABLE_USER_AUTH never holds them in memory.
 */
export async function createAccounts(options: AccountsOptions): Promise<Accounts> {
  const { buildAccounts } = await import('./create-accounts.js');
  return buildAccounts(options);
}
