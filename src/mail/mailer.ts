import type { FastifyBaseLogger } from 'fastify';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Where account mails go: real SMTP, or the dev outbox that writes them to the log. */
export interface Mailer {
  /** Resolves once the mail server accepted the message; rejects when it could not be delivered to it. */
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * Without SMTP_HOST (development), mails are written to the log so the code can be read there:
 * the one place a code ever appears in a log, by design.
 */
export function createDevOutbox(log: FastifyBaseLogger): Mailer {
  return {
    async send(message) {
      log.warn({ outbox: { to: message.to, subject: message.subject, text: message.text } }, `DEV OUTBOX (set SMTP_HOST to send real mail) to ${message.to}: ${message.subject}\n${message.text}`);
    },
    async close() {},
  };
}
