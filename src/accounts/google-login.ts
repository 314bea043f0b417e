import { ChassisError, featureDisabled, forbidden, unauthorized } from '../errors.js';
import { enforceLimit, issueTokens, limitKeys, normalizeEmail, TOKEN_IP_WINDOW_SECONDS, type AccountDeps, type Caller, type TokenResponse } from './context.js';
import { UniqueViolation } from './store-errors.js';
import type { User } from './users.js';

const UNVERIFIED = 'Google has not verified this email address; verify it with Google, or sign up with email and password';
const conflict = (detail: string) => new ChassisError(409, 'CONFLICT', detail);

/**
 * Sign in with a Google ID token. The account is keyed on Google's `sub`. A password account with
 * the same email is linked only when Google says the email is verified; a different Google account
 * carrying an already linked email is a conflict, never a silent relink. An unverified Google email
 * never creates an account.
 */
export async function googleLogin(deps: AccountDeps, input: { id_token: string }, caller: Caller): Promise<TokenResponse> {
  if (deps.verifyGoogle === undefined) throw featureDisabled('Google sign-in is not configured on this server: set GOOGLE_CLIENT_ID');
  await enforceLimit(deps, limitKeys.tokenIp(caller.ip), deps.config.tokenRateLimitPerIp, TOKEN_IP_WINDOW_SECONDS, 'Too many token requests from this address; try again later');
  const google = await deps.verifyGoogle(input.id_token);
  // The same plain-address rule as sign-up: an odd string never becomes an account's verified email.
  let email: string;
  try {
    email = normalizeEmail(google.email);
  } catch {
    throw unauthorized('Invalid Google ID token');
  }

  let user = await deps.users.byGoogleId(google.sub);
  if (user === undefined) user = await linkOrCreate(deps, google.sub, email, google.emailVerified, google.name);
  if (user.disabled === 1) throw forbidden('This account is disabled');
  caller.log.info({ event: 'login_succeeded', user_id: user.id, method: 'google' }, 'login succeeded');
  return issueTokens(deps, user);
}

async function linkOrCreate(deps: AccountDeps, sub: string, email: string, emailVerified: boolean, name: string | undefined): Promise<User> {
  const existing = await deps.users.byEmail(email);
  if (existing !== undefined) {
    if (existing.google_id !== null) throw conflict('This email is already linked to another Google account');
    if (!emailVerified) throw forbidden(UNVERIFIED);
    if (!(await deps.users.linkGoogle(existing, sub))) throw conflict('This account was linked to a Google account meanwhile; try again');
    const linked = await deps.users.byId(existing.id);
    if (linked === undefined) throw conflict('The account changed meanwhile; try again');
    return linked;
  }
  if (!emailVerified) throw forbidden(UNVERIFIED);
  try {
    return await deps.users.create({ email, passwordHash: null, emailVerified: true, googleId: sub, displayName: displayNameFrom(name) });
  } catch (error) {
    if (error instanceof UniqueViolation) throw conflict('An account for this email or Google account was created meanwhile; try again');
    throw error;
  }
}

/** Google's name, made safe for our rules (printable, ≤ 100 characters) rather than refused. */
function displayNameFrom(name: string | undefined): string | null {
  if (name === undefined) return null;
  const clean = [...name.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim()].slice(0, 100).join('');
  return clean === '' ? null : clean;
}
