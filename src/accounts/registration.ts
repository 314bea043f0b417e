import { randomUUID } from 'node:crypto';
import { badRequest, ChassisError } from '../errors.js';
import { accountExistsMail, verificationMail } from '../mail/index.js';
import {
  checkCodeLimits,
  checkDisplayName,
  EMAIL_IP_WINDOW_SECONDS,
  enforceLimit,
  INVALID_CODE,
  limitKeys,
  normalizeEmail,
  rateLimited,
  type AccountDeps,
  type Caller,
} from './context.js';
import { passwordProblem } from './password-policy.js';
import { UniqueViolation } from './store-errors.js';

export interface RegisterInput {
  email: string;
  password: string;
  display_name?: string | null;
}

const REGISTERED = 'Account created. Enter the 6-digit code we emailed you to verify your address.';

/**
 * Register. An email that already has an account gets the very same 201 (with a throw-away
 * user_id) and its owner gets an "account exists" mail, so register cannot be used to find out who
 * has an account; the password is hashed in both branches so the timing matches too.
 */
export async function register(deps: AccountDeps, input: RegisterInput, caller: Caller) {
  await enforceLimit(deps, limitKeys.emailIp(caller.ip), deps.config.emailRateLimitPerIp, EMAIL_IP_WINDOW_SECONDS, 'Too many sign-ups or mails from this address; try again later');
  const email = normalizeEmail(input.email);
  const displayName = checkDisplayName(input.display_name);
  const problem = passwordProblem(input.password);
  if (problem !== null) throw badRequest(problem);
  const passwordHash = await deps.hasher.hash(input.password);

  const existing = await deps.users.byEmail(email);
  let userId: string;
  if (existing === undefined) {
    try {
      userId = (await deps.users.create({ email, passwordHash, emailVerified: false, googleId: null, displayName })).id;
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error;
      return alreadyRegistered(deps, email, caller);
    }
  } else {
    return alreadyRegistered(deps, email, caller);
  }
  caller.log.info({ event: 'user_registered', user_id: userId }, 'user registered');
  await sendVerificationCode(deps, email, true);
  return { user_id: userId, email, message: REGISTERED };
}

async function alreadyRegistered(deps: AccountDeps, email: string, caller: Caller) {
  caller.log.info({ event: 'register_existing_email' }, 'registration for an existing email');
  // One notice per address per window, so repeated sign-ups cannot flood the owner's mailbox.
  const window = Math.max(1, deps.config.verificationRateLimitSeconds);
  if ((await deps.limiter.consume(limitKeys.mailTo('exists', email), 1, window)).allowed) {
    await deliver(deps, accountExistsMail(email));
  }
  return { user_id: randomUUID(), email, message: REGISTERED };
}

/**
 * Sends a fresh code (the previous one dies). On register the mail goes out before answering so a
 * dead mail server is reported (503); the account stays and the user can ask again.
 */
async function sendVerificationCode(deps: AccountDeps, email: string, countAsResend: boolean): Promise<void> {
  const mailKey = limitKeys.mailTo('verify', email);
  if (countAsResend && deps.config.verificationRateLimitSeconds > 0) await deps.limiter.consume(mailKey, 1, deps.config.verificationRateLimitSeconds);
  const code = await deps.codes.issue('verify_email', email);
  try {
    await deliver(deps, verificationMail(email, code, deps.config.verificationCodeExpireMinutes));
  } catch (error) {
    // The user must be able to ask again at once.
    await deps.limiter.clear(mailKey);
    throw error;
  }
}

async function deliver(deps: AccountDeps, mail: Parameters<AccountDeps['mailer']['send']>[0]): Promise<void> {
  try {
    await deps.mailer.send(mail);
  } catch (error) {
    throw new ChassisError(503, 'MAIL_UNAVAILABLE', 'Your account exists, but the email could not be sent right now. Ask for a new code with POST /api/v1/auth/resend-verification in a moment.', {
      cause: error,
      headers: { 'retry-after': '30' },
    });
  }
}

export interface VerifyEmailInput {
  email: string;
  code: string;
}

/** One answer for every failure (unknown email, wrong, expired or used code): 400 "Invalid or expired code". */
export async function verifyEmail(deps: AccountDeps, input: VerifyEmailInput, caller: Caller) {
  const email = await checkCodeLimits(deps, input.email, caller);
  if (!(await deps.codes.consume('verify_email', email, input.code))) {
    caller.log.info({ event: 'email_code_rejected', purpose: 'verify_email' }, 'email code rejected');
    throw badRequest(INVALID_CODE);
  }
  await deps.limiter.refund(limitKeys.codeCheckEmail(email));
  await deps.users.markEmailVerified(email);
  caller.log.info({ event: 'email_verified' }, 'email verified');
  return { success: true, message: 'Email verified. You can now log in.' };
}

/**
 * At most one verification mail per address per VERIFICATION_RATE_LIMIT_SECONDS, counted on the
 * address string whether or not it has an account, and the same 200 for unknown, verified and
 * unverified addresses. The mail itself goes out after the answer.
 */
export async function resendVerification(deps: AccountDeps, input: { email: string }, caller: Caller) {
  await enforceLimit(deps, limitKeys.emailIp(caller.ip), deps.config.emailRateLimitPerIp, EMAIL_IP_WINDOW_SECONDS, 'Too many sign-ups or mails from this address; try again later');
  const email = normalizeEmail(input.email);
  if (deps.config.verificationRateLimitSeconds > 0) {
    const decision = await deps.limiter.consume(limitKeys.mailTo('verify', email), 1, deps.config.verificationRateLimitSeconds);
    if (!decision.allowed) throw rateLimited('A code was sent to this address recently; wait before asking again', decision.retryAfterSeconds);
  }
  deps.background.run('resend-verification', async () => {
    const user = await deps.users.byEmail(email);
    if (user === undefined || user.email_verified === 1) return;
    await sendVerificationCode(deps, email, false);
  });
  return { success: true, message: 'If this address belongs to an account that is not verified yet, a new code is on its way.' };
}
