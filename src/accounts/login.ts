import { ChassisError, forbidden, unauthorized } from '../errors.js';
import type { Principal } from '../principal.js';
import { enforceLimit, INVALID_CREDENTIALS, INVALID_REFRESH_TOKEN, issueTokens, limitKeys, TOKEN_IP_WINDOW_SECONDS, type AccountDeps, type Caller, type TokenResponse } from './context.js';

export interface LoginInput {
  email: string;
  password: string;
}

/**
 * Password login. Limits count failures only: a hit is taken before the check and given back when
 * the password is right, so parallel tries cannot overshoot (5 per IP, 10 per email across IPs,
 * per window). While a limit holds, even the right password gets 429: no success oracle.
 * Unknown email, wrong password and Google-only account give the same 401 after the same work;
 * "not verified" is said only to someone who knows the password.
 */
export async function login(deps: AccountDeps, input: LoginInput, caller: Caller): Promise<TokenResponse> {
  const { config } = deps;
  const window = config.loginRateLimitWindowSeconds;
  const ipKey = limitKeys.loginIp(caller.ip);
  await enforceLimit(deps, ipKey, config.loginRateLimitAttempts, window, 'Too many failed logins from this address; try again later');
  // No format check here: a malformed address is just an unknown one (same answer, same timing).
  const email = input.email.trim().toLowerCase();
  const accountKey = limitKeys.loginAccount(email);
  const account = await deps.limiter.consume(accountKey, config.loginAccountRateLimitAttempts, window);
  if (!account.allowed) {
    caller.log.warn({ event: 'login_locked' }, 'login refused: too many failures for this account');
    throw new ChassisError(429, 'RATE_LIMITED', 'Too many failed logins for this account; try again later or reset the password', { headers: { 'retry-after': String(account.retryAfterSeconds) } });
  }

  const refundBoth = async () => {
    await deps.limiter.refund(ipKey);
    await deps.limiter.refund(accountKey);
  };
  const user = email.length <= 254 ? await deps.users.byEmail(email) : undefined;
  let verified;
  try {
    verified = await deps.hasher.verify(user?.password_hash ?? null, input.password);
  } catch (error) {
    await refundBoth(); // a busy server is not a failed attempt
    throw error;
  }
  if (user === undefined || !verified.ok) {
    caller.log.info({ event: 'login_failed', user_id: user?.id }, 'login failed');
    throw unauthorized(INVALID_CREDENTIALS);
  }
  await refundBoth();
  if (user.disabled === 1) throw forbidden('This account is disabled');
  if (user.email_verified !== 1) throw forbidden('Email not verified: enter the code we emailed you, or ask for a new one with POST /api/v1/auth/resend-verification');
  if (verified.needsRehash) await deps.users.setPasswordHash(user.id, await deps.hasher.hash(input.password));
  caller.log.info({ event: 'login_succeeded', user_id: user.id }, 'login succeeded');
  return issueTokens(deps, user);
}

/** Rotates the refresh token; a rotated one presented after the grace window revokes its family. */
export async function refresh(deps: AccountDeps, input: { refresh_token: string }, caller: Caller): Promise<TokenResponse> {
  await enforceLimit(deps, limitKeys.tokenIp(caller.ip), deps.config.tokenRateLimitPerIp, TOKEN_IP_WINDOW_SECONDS, 'Too many token requests from this address; try again later');
  const outcome = await deps.refresh.rotate(input.refresh_token);
  if (outcome.kind === 'reused') {
    caller.log.warn({ event: 'refresh_token_reuse', user_id: outcome.userId, family_id: outcome.familyId }, 'a rotated refresh token was used again: its family is revoked');
  }
  if (outcome.kind !== 'rotated') throw unauthorized(INVALID_REFRESH_TOKEN);
  const user = await deps.users.byId(outcome.userId);
  if (user === undefined || user.disabled === 1) {
    await deps.refresh.revokeAllOf(outcome.userId);
    throw unauthorized(INVALID_REFRESH_TOKEN);
  }
  const accessToken = await deps.access.sign({ userId: user.id, version: user.token_version, familyId: outcome.familyId });
  return { access_token: accessToken, refresh_token: outcome.token, token_type: 'bearer', expires_in: deps.access.expiresIn };
}

/** Ends the refresh token's family (and the access tokens issued with it). Idempotent: always 200. */
export async function logout(deps: AccountDeps, input: { refresh_token: string }, caller: Caller) {
  await enforceLimit(deps, limitKeys.tokenIp(caller.ip), deps.config.tokenRateLimitPerIp, TOKEN_IP_WINDOW_SECONDS, 'Too many token requests from this address; try again later');
  await deps.refresh.revokeFamilyOf(input.refresh_token);
  caller.log.info({ event: 'logout' }, 'logged out');
  return { success: true, message: 'Logged out' };
}

const INVALID_ACCESS_TOKEN = 'Invalid or expired access token';

/**
 * The Bearer check used on every request: a valid access token whose user still exists, is not
 * disabled, has the same token_version (a password reset raises it) and whose refresh family is not
 * revoked (logout, reuse detection).
 */
export async function verifyBearer(deps: AccountDeps, token: string): Promise<Principal> {
  const claims = await deps.access.verify(token);
  if (claims === null) throw unauthorized(INVALID_ACCESS_TOKEN);
  const state = await deps.users.accessState(claims.userId, claims.familyId);
  if (state === undefined || state.disabled === 1 || state.token_version !== claims.version || state.family_id === null || state.revoked_at !== null) {
    throw unauthorized(INVALID_ACCESS_TOKEN);
  }
  return { userId: claims.userId, via: 'jwt' };
}

export async function me(deps: AccountDeps, principal: Principal) {
  if (principal.via !== 'jwt' || principal.userId === null) throw unauthorized('GET /auth/me needs an Authorization: Bearer access token');
  const user = await deps.users.byId(principal.userId);
  if (user === undefined) throw unauthorized(INVALID_ACCESS_TOKEN);
  return {
    id: user.id,
    email: user.email,
    email_verified: user.email_verified === 1,
    has_google_auth: user.google_id !== null,
    display_name: user.display_name,
    created_at: new Date(user.created_at).toISOString(),
    is_admin: user.is_admin === 1,
  };
}
