import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { RateLimiter } from '../limits/index.js';
import type { Mailer } from '../mail/index.js';
import type { Principal } from '../principal.js';
import { AccessTokens } from './access-tokens.js';
import { BackgroundTasks } from './background.js';
import type { AccountDeps, Caller } from './context.js';
import { EmailCodes } from './email-codes.js';
import { googleLogin } from './google-login.js';
import { createGoogleVerifier } from './google-id-tokens.js';
import { deriveKeys } from './keys.js';
import { login, logout, me, refresh, verifyBearer } from './login.js';
import { PasswordHasher } from './password-hasher.js';
import { confirmPasswordReset, requestPasswordReset, type ResetConfirmInput } from './password-reset.js';
import { RefreshTokens } from './refresh-tokens.js';
import { register, resendVerification, verifyEmail, type RegisterInput, type VerifyEmailInput } from './registration.js';
import { UserStore } from './users.js';

export interface AccountsOptions {
  config: Config;
  database: Database;
  limiter: RateLimiter;
  mailer: Mailer;
  log: FastifyBaseLogger;
}

/** The account flows, bound to this app's stores. Routes call these; identity calls `verifyBearer`. */
export interface Accounts {
  register(input: RegisterInput, caller: Caller): ReturnType<typeof register>;
  verifyEmail(input: VerifyEmailInput, caller: Caller): ReturnType<typeof verifyEmail>;
  resendVerification(input: { email: string }, caller: Caller): ReturnType<typeof resendVerification>;
  login(input: { email: string; password: string }, caller: Caller): ReturnType<typeof login>;
  refresh(input: { refresh_token: string }, caller: Caller): ReturnType<typeof refresh>;
  logout(input: { refresh_token: string }, caller: Caller): ReturnType<typeof logout>;
  google(input: { id_token: string }, caller: Caller): ReturnType<typeof googleLogin>;
  requestPasswordReset(input: { email: string }, caller: Caller): ReturnType<typeof requestPasswordReset>;
  confirmPasswordReset(input: ResetConfirmInput, caller: Caller): ReturnType<typeof confirmPasswordReset>;
  me(principal: Principal): ReturnType<typeof me>;
  verifyBearer(token: string): Promise<Principal>;
  /** Waits for mail still being sent after an answer (shutdown, tests). */
  drain(): Promise<void>;
}

export function buildAccounts(options: AccountsOptions): Accounts {
  const { config, database, limiter, mailer, log } = options;
  if (config.jwtSecretKey === undefined) throw new Error('JWT_SECRET_KEY is required when ENABLE_USER_AUTH=true');
  const keys = deriveKeys(config.jwtSecretKey);
  const background = new BackgroundTasks(log);
  const deps: AccountDeps = {
    config,
    users: new UserStore(database.db),
    codes: new EmailCodes(database.db, { key: keys.emailCodes, expireMinutes: config.verificationCodeExpireMinutes, maxAttempts: config.verificationMaxAttempts }),
    hasher: new PasswordHasher({ memoryKib: config.argon2MemoryKib, timeCost: config.argon2TimeCost, concurrency: config.passwordHashConcurrency, queue: config.passwordHashQueue }),
    access: new AccessTokens(keys.accessToken, Math.max(1, Math.round(config.jwtAccessTokenExpireMinutes * 60))),
    refresh: new RefreshTokens(database.db, {
      successorKey: keys.refreshSuccessor,
      lifetimeMs: config.jwtRefreshTokenExpireDays * 86_400_000,
      reuseIntervalMs: config.refreshTokenReuseIntervalSeconds * 1000,
    }),
    mailer,
    limiter,
    background,
    verifyGoogle:
      config.googleClientId === undefined ? undefined : createGoogleVerifier({ clientId: config.googleClientId, jwksUrl: config.googleJwksUrl, issuers: config.googleIssuers, cooldownSeconds: config.googleJwksCooldownSeconds }),
  };
  return {
    register: (input, caller) => register(deps, input, caller),
    verifyEmail: (input, caller) => verifyEmail(deps, input, caller),
    resendVerification: (input, caller) => resendVerification(deps, input, caller),
    login: (input, caller) => login(deps, input, caller),
    refresh: (input, caller) => refresh(deps, input, caller),
    logout: (input, caller) => logout(deps, input, caller),
    google: (input, caller) => googleLogin(deps, input, caller),
    requestPasswordReset: (input, caller) => requestPasswordReset(deps, input, caller),
    confirmPasswordReset: (input, caller) => confirmPasswordReset(deps, input, caller),
    me: (principal) => me(deps, principal),
    verifyBearer: (token) => verifyBearer(deps, token),
    drain: () => background.drain(),
  };
}
