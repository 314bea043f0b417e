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
 * Register. Every path answers the same 201 (a throw-away user_id when the address was taken), hashes
 * the password, and counts one mail against the address's mail limit (the one resend-verification
 * uses), then sends at most one mail if that limit allows: so neither the answer, nor the limits it
 * spends, nor the work it does tells whether the address already had an account (#17, #22, #27).
 *
 * - new address: the account is created and its code mailed;
 * - an account nobody has verified yet: its password is REPLACED by this one and a fresh code is
 *   mailed (the earlier code dies). Whoever registered first never proved the mailbox, so their
 *   password must not be the one that opens the account once the mailbox owner verifies it
 *   (pre-account takeover); the password in force is always the latest sign-up's;
 * - a verified account: nothing changes, its owner gets an "account exists" notice.
 */
export async function register(deps: AccountDeps, input: RegisterInput, caller: Caller) {
  await enforceLimit(deps, limitKeys.emailIp(caller.ip), deps.config.emailRateLimitPerIp, EMAIL_IP_WINDOW_SECONDS, 'Too many sign-ups or mails from this address; try again later');
  const email = normalizeEmail(input.email);
  const displayName = checkDisplayName(input.display_name);
  const problem = passwordProblem(input.password);
  if (problem !== null) throw badRequest(problem);
  const passwordHash = await deps.hasher.hash(input.password);
  const mayMail = await spendMailLimit(deps, email);

  const existing = await deps.users.byEmail(email);
  let userId: string;
  if (existing === undefined) {
    try {
      userId = (await deps.users.create({ email, passwordHash, emailVerified: false, googleId: null, displayName })).id;
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error;
      return alreadyRegistered(deps, email, caller, mayMail);
    }
  } else if (existing.email_verified === 0 && (await deps.users.replaceUnverifiedSignUp(existing.id, passwordHash, displayName))) {
    caller.log.info({ event: 'unverified_signup_replaced', user_id: existing.id }, 'sign-up repeated on an unverified account: its password was replaced');
    if (mayMail) await sendVerificationCode(deps, email);
    return { user_id: randomUUID(), email, message: REGISTERED };
  } else {
    return alreadyRegistered(deps, email, caller, mayMail);
  }
  caller.log.info({ event: 'user_registered', user_id: userId }, 'user registered');
  if (mayMail) await sendVerificationCode(deps, email);
  return { user_id: userId, email, message: REGISTERED };
}

/** One count on the address's verification-mail limit; true when a mail may go out now. */
async function spendMailLimit(deps: AccountDeps, email: string): Promise<boolean> {
  if (deps.config.verificationRateLimitSeconds <= 0) return true;
  return (await deps.limiter.consume(limitKeys.mailTo('verify', email), 1, deps.config.verificationRateLimitSeconds)).allowed;
}

async function alreadyRegistered(deps: AccountDeps, email: string, caller: Caller, mayMail: boolean) {
  caller.log.info({ event: 'register_existing_email' }, 'registration for an existing email');
  // Under the same per-address mail limit as every other path, so repeated sign-ups cannot flood the owner's mailbox.
  if (mayMail) await deliverCounted(deps, email, accountExistsMail(email));
  return { user_id: randomUUID(), email, message: REGISTERED };
}

/**
 * Sends a fresh code (the previous one dies). On register the mail goes out before answering so a
 * dead mail server is reported (503); the account stays and the user can ask again.
 */
async function sendVerificationCode(deps: AccountDeps, email: string): Promise<void> {
  const code = await deps.codes.issue('verify_email', email);
  await deliverCounted(deps, email, verificationMail(email, code, deps.config.verificationCodeExpireMinutes));
}

/** A mail counted on the address's limit: when it cannot be sent the count is given back (on every path alike), so the user can ask again at once. */
async function deliverCounted(deps: AccountDeps, email: string, mail: Parameters<AccountDeps['mailer']['send']>[0]): Promise<void> {
  try {
    await deliver(deps, mail);
  } catch (error) {
    await deps.limiter.clear(limitKeys.mailTo('verify', email));
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
    await sendVerificationCode(deps, email);
  });
  return { success: true, message: 'If this address belongs to an account that is not verified yet, a new code is on its way.' };
}
