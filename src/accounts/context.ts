import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { badRequest, ChassisError } from '../errors.js';
import type { RateLimiter } from '../limits/index.js';
import type { Mailer } from '../mail/index.js';
import type { AccessTokens } from './access-tokens.js';
import type { BackgroundTasks } from './background.js';
import type { EmailCodes } from './email-codes.js';
import type { GoogleIdentity } from './google-id-tokens.js';
import type { PasswordHasher } from './password-hasher.js';
import type { RefreshTokens } from './refresh-tokens.js';
import type { User, UserStore } from './users.js';

/** Everything the account flows share; built once per app in accounts/index.ts. */
export interface AccountDeps {
  config: Config;
  users: UserStore;
  codes: EmailCodes;
  hasher: PasswordHasher;
  access: AccessTokens;
  refresh: RefreshTokens;
  mailer: Mailer;
  limiter: RateLimiter;
  background: BackgroundTasks;
  /** Absent when GOOGLE_CLIENT_ID is unset. */
  verifyGoogle?: (idToken: string) => Promise<GoogleIdentity>;
}

/** Who is asking, for per-IP limits and security-event logs. */
export interface Caller {
  ip: string;
  log: FastifyBaseLogger;
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export const INVALID_CREDENTIALS = 'Invalid email or password';
export const INVALID_CODE = 'Invalid or expired code';
export const INVALID_REFRESH_TOKEN = 'Invalid or expired refresh token';

const EMAIL_MAX_LENGTH = 254;
const DISPLAY_NAME_MAX_LENGTH = 100;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/**
 * A plain addr-spec and nothing else: a dot-atom local part (no quotes, no comments, no display
 * name, no "<…>", no commas, no "%"/"!" routing) and a domain of DNS labels (IDNs as xn--).
 * Anything looser is read by mail software as something else: `ceo<attacker@evil.com>` or
 * `x,attacker@evil.com` deliver to the attacker while the account shows the odd string as verified.
 */
const EMAIL_SHAPE = /^[a-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[a-z0-9#$&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const LOCAL_PART_MAX_LENGTH = 64;

/**
 * Emails are compared trimmed and lower-cased. Line breaks are refused outright: an address is put
 * in mail headers, where CR/LF would add headers of the sender's choosing.
 */
export function normalizeEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (CONTROL_CHARACTERS.test(email)) throw badRequest('email must not contain line breaks or control characters');
  if (email.length > EMAIL_MAX_LENGTH) throw badRequest(`email must have at most ${EMAIL_MAX_LENGTH} characters`);
  if (!EMAIL_SHAPE.test(email) || email.indexOf('@') > LOCAL_PART_MAX_LENGTH) {
    throw badRequest('email must be a plain address such as name@example.com (no display name, quotes, brackets, commas or spaces)');
  }
  return email;
}

export function checkDisplayName(raw: string | null | undefined): string | null {
  if (raw === undefined || raw === null) return null;
  const name = raw.trim();
  if (CONTROL_CHARACTERS.test(name)) throw badRequest('display_name must not contain line breaks or control characters');
  if ([...name].length > DISPLAY_NAME_MAX_LENGTH) throw badRequest(`display_name must have at most ${DISPLAY_NAME_MAX_LENGTH} characters`);
  return name === '' ? null : name;
}

export function rateLimited(detail: string, retryAfterSeconds: number): ChassisError {
  return new ChassisError(429, 'RATE_LIMITED', detail, { headers: { 'retry-after': String(retryAfterSeconds) } });
}

/** Counts one hit on `key`; past `limit` in the window → 429 with Retry-After. */
export async function enforceLimit(deps: AccountDeps, key: string, limit: number, windowSeconds: number, detail: string): Promise<void> {
  const decision = await deps.limiter.consume(key, limit, windowSeconds);
  if (!decision.allowed) throw rateLimited(detail, decision.retryAfterSeconds);
}

/** Per-IP and per-email caps on code checks: ≤ 10 tries per email per hour however many codes were sent. */
export async function checkCodeLimits(deps: AccountDeps, rawEmail: string, caller: Caller): Promise<string> {
  await enforceLimit(deps, limitKeys.codeCheckIp(caller.ip), deps.config.codeCheckRateLimitPerIp, CODE_CHECK_IP_WINDOW_SECONDS, 'Too many code checks from this address; try again later');
  const email = normalizeEmail(rawEmail);
  await enforceLimit(deps, limitKeys.codeCheckEmail(email), deps.config.codeCheckRateLimitPerEmail, CODE_CHECK_EMAIL_WINDOW_SECONDS, 'Too many code checks for this email; try again later');
  return email;
}

/** A new refresh family and an access token bound to it. */
export async function issueTokens(deps: AccountDeps, user: User): Promise<TokenResponse> {
  const { token, familyId } = await deps.refresh.start(user.id);
  const accessToken = await deps.access.sign({ userId: user.id, version: user.token_version, familyId });
  return { access_token: accessToken, refresh_token: token, token_type: 'bearer', expires_in: deps.access.expiresIn };
}

/** Limit keys, in one place so the flows that share a counter cannot drift apart. */
export const limitKeys = {
  loginIp: (ip: string) => `auth:login:ip:${ip}`,
  loginAccount: (email: string) => `auth:login:email:${email}`,
  codeCheckIp: (ip: string) => `auth:code:ip:${ip}`,
  codeCheckEmail: (email: string) => `auth:code:email:${email}`,
  tokenIp: (ip: string) => `auth:token:ip:${ip}`,
  emailIp: (ip: string) => `auth:mail:ip:${ip}`,
  mailTo: (kind: 'verify' | 'reset', email: string) => `auth:mail:${kind}:${email}`,
};

export const CODE_CHECK_IP_WINDOW_SECONDS = 300;
export const CODE_CHECK_EMAIL_WINDOW_SECONDS = 3600;
export const TOKEN_IP_WINDOW_SECONDS = 300;
export const EMAIL_IP_WINDOW_SECONDS = 3600;
