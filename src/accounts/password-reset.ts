import { badRequest } from '../errors.js';
import { passwordChangedMail, passwordResetMail } from '../mail/index.js';
import { checkCodeLimits, EMAIL_IP_WINDOW_SECONDS, enforceLimit, INVALID_CODE, limitKeys, normalizeEmail, type AccountDeps, type Caller } from './context.js';
import { passwordProblem } from './password-policy.js';

const RESET_REQUESTED = 'If an account exists for this address, a 6-digit reset code is on its way.';

/**
 * Always the same 200, for existing, unknown, Google-only and rate-limited addresses alike: the
 * lookup and the mail happen after the answer, so neither the body nor the timing tells them apart.
 */
export async function requestPasswordReset(deps: AccountDeps, input: { email: string }, caller: Caller) {
  await enforceLimit(deps, limitKeys.emailIp(caller.ip), deps.config.emailRateLimitPerIp, EMAIL_IP_WINDOW_SECONDS, 'Too many sign-ups or mails from this address; try again later');
  const email = normalizeEmail(input.email);
  deps.background.run('password-reset', async () => {
    if (deps.config.verificationRateLimitSeconds > 0) {
      const decision = await deps.limiter.consume(limitKeys.mailTo('reset', email), 1, deps.config.verificationRateLimitSeconds);
      if (!decision.allowed) return;
    }
    const user = await deps.users.byEmail(email);
    if (user === undefined || user.disabled === 1) return;
    const code = await deps.codes.issue('password_reset', email);
    await deps.mailer.send(passwordResetMail(email, code, deps.config.verificationCodeExpireMinutes));
  });
  caller.log.info({ event: 'password_reset_requested' }, 'password reset requested');
  return { success: true, message: RESET_REQUESTED };
}

export interface ResetConfirmInput {
  email: string;
  code: string;
  new_password: string;
}

/**
 * A right code sets the new password and ends every session: all refresh families are revoked and
 * token_version rises, so access tokens issued before stop working at once. The user is not logged
 * in; a "password changed" notice is mailed.
 */
export async function confirmPasswordReset(deps: AccountDeps, input: ResetConfirmInput, caller: Caller) {
  const problem = passwordProblem(input.new_password);
  if (problem !== null) throw badRequest(problem);
  const email = await checkCodeLimits(deps, input.email, caller);
  // Hashed before the code is used, so a busy hasher (503) does not burn the code.
  const passwordHash = await deps.hasher.hash(input.new_password);
  if (!(await deps.codes.consume('password_reset', email, input.code))) {
    caller.log.info({ event: 'email_code_rejected', purpose: 'password_reset' }, 'email code rejected');
    throw badRequest(INVALID_CODE);
  }
  const user = await deps.users.byEmail(email);
  if (user === undefined) throw badRequest(INVALID_CODE);
  await deps.users.resetPassword(user.id, passwordHash);
  await deps.refresh.revokeAllOf(user.id);
  await deps.limiter.refund(limitKeys.codeCheckEmail(email));
  await deps.limiter.clear(limitKeys.loginAccount(email));
  caller.log.info({ event: 'password_reset', user_id: user.id }, 'password reset: every session revoked');
  deps.background.run('password-changed-notice', () => deps.mailer.send(passwordChangedMail(email)));
  return { success: true, message: 'Password changed. Log in with your new password.' };
}
