import type { MailMessage } from './mailer.js';

/**
 * Every account mail, from fixed text. Only server-made values (a code, a number of minutes) go in:
 * never a user-supplied name and never the request's Host header, so a mail cannot be made to carry
 * someone else's link or markup.
 */

function minutesText(minutes: number): string {
  const rounded = Math.max(1, Math.round(minutes));
  return rounded === 1 ? '1 minute' : `${rounded} minutes`;
}

function page(title: string, paragraphs: string[]): string {
  return `<!doctype html><html><body style="font-family:sans-serif;line-height:1.5"><h2>${title}</h2>${paragraphs.map((text) => `<p>${text}</p>`).join('')}</body></html>`;
}

function codeMail(to: string, subject: string, intro: string, code: string, minutes: number): MailMessage {
  const lifetime = `The code expires in ${minutesText(minutes)} and can be used once.`;
  const ignore = 'If you did not ask for this, you can ignore this mail.';
  return {
    to,
    subject,
    text: `${intro}\n\nYour code: ${code}\n\n${lifetime}\n${ignore}\n`,
    html: page(subject, [intro, `Your code: <strong style="font-size:1.4em;letter-spacing:0.2em">${code}</strong>`, lifetime, ignore]),
  };
}

export function verificationMail(to: string, code: string, minutes: number): MailMessage {
  return codeMail(to, 'Verify your email address', 'Use this code to verify your email address.', code, minutes);
}

export function passwordResetMail(to: string, code: string, minutes: number): MailMessage {
  return codeMail(to, 'Reset your password', 'Use this code to choose a new password.', code, minutes);
}

export function accountExistsMail(to: string): MailMessage {
  const lines = [
    'Someone (perhaps you) tried to create an account with this email address, but an account already exists.',
    'If it was you, log in, or reset your password if you forgot it.',
    'If it was not you, you can ignore this mail: nothing was changed.',
  ];
  return { to, subject: 'You already have an account', text: `${lines.join('\n\n')}\n`, html: page('You already have an account', lines) };
}

export function passwordChangedMail(to: string): MailMessage {
  const lines = [
    'The password of your account was just changed, and every device was signed out.',
    'If you did not do this, reset your password now and check who can read your mail.',
  ];
  return { to, subject: 'Your password was changed', text: `${lines.join('\n\n')}\n`, html: page('Your password was changed', lines) };
}
