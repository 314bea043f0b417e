import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { createDevOutbox, type Mailer } from './mailer.js';
import { createSmtpMailer } from './smtp-mailer.js';

export type { Mailer, MailMessage } from './mailer.js';
export { accountExistsMail, passwordChangedMail, passwordResetMail, verificationMail } from './templates.js';

/** SMTP when SMTP_HOST is set, else the dev outbox. */
export function createMailer(config: Config, log: FastifyBaseLogger): Mailer {
  if (config.smtpHost === undefined) return createDevOutbox(log);
  return createSmtpMailer({ host: config.smtpHost, port: config.smtpPort, user: config.smtpUser, password: config.smtpPassword, from: config.emailFrom });
}
