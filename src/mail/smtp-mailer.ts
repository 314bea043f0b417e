import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Mailer } from './mailer.js';

export interface SmtpOptions {
  host: string;
  port: number;
  user?: string;
  password?: string;
  from: string;
}

/** The only file that imports nodemailer. Bounded waits, so a hung mail server fails a send instead of hanging it. */
export function createSmtpMailer(options: SmtpOptions): Mailer {
  const smtp: SMTPTransport.Options = {
    host: options.host,
    port: options.port,
    // 465 is implicit TLS; other ports upgrade with STARTTLS when the server offers it.
    secure: options.port === 465,
    auth: options.user === undefined ? undefined : { user: options.user, pass: options.password ?? '' },
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
    socketTimeout: 10_000,
  };
  const transport = nodemailer.createTransport(smtp);
  return {
    async send(message) {
      await transport.sendMail({ from: options.from, to: message.to, subject: message.subject, text: message.text, html: message.html });
    },
    async close() {
      transport.close();
    },
  };
}
