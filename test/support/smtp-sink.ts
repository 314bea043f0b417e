// A real SMTP server on loopback that keeps every mail it receives, so tests read codes black-box.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  subject: string;
  /** The whole message, quoted-printable decoded. */
  raw: string;
  /** The 6-digit code after "Your code:", if any. */
  code: string | undefined;
}

export interface SmtpSink {
  host: string;
  port: number;
  mails: ReceivedMail[];
  /** Delay before accepting each message (a slow mail server). */
  delayMs: number;
  /** Resolves with the first mail (received now or later) matching `match`. */
  waitFor(match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  /** The code of the latest mail to `to` whose subject contains `subject`, waiting for one newer than `after` mails. */
  codeFor(to: string, subject: RegExp, after?: number): Promise<string>;
  count(to: string, subject?: RegExp): number;
  close(): Promise<void>;
}

function decodeQuotedPrintable(raw: string): string {
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export async function startSmtpSink(port = 0): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const sink = { delayMs: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = decodeQuotedPrintable(Buffer.concat(chunks).toString('utf8'));
        const subject = /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '';
        const to = session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase());
        const finish = () => {
          mails.push({ to, subject, raw, code: /Your code: (\d{6})/.exec(raw)?.[1] });
          for (const wake of waiters) wake();
          callback();
        };
        if (sink.delayMs > 0) setTimeout(finish, sink.delayMs);
        else finish();
      });
    },
  });
  server.listen(port, '127.0.0.1');
  await once(server.server, 'listening');
  const address = server.server.address() as AddressInfo;

  const waitFor = (match: (mail: ReceivedMail) => boolean, timeoutMs = 5000) =>
    new Promise<ReceivedMail>((resolve, reject) => {
      const check = () => {
        const found = mails.find(match);
        if (found === undefined) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching mail within ${timeoutMs} ms (have ${mails.length}: ${mails.map((mail) => `${mail.to.join(',')} ${mail.subject}`).join('; ')})`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });

  return {
    host: '127.0.0.1',
    port: address.port,
    mails,
    get delayMs() {
      return sink.delayMs;
    },
    set delayMs(value: number) {
      sink.delayMs = value;
    },
    waitFor,
    async codeFor(to, subject, after = 0) {
      const address = to.toLowerCase();
      const matching = () => mails.filter((mail) => mail.to.includes(address) && subject.test(mail.subject));
      await waitFor(() => matching().length > after);
      const mail = matching().at(-1)!;
      if (mail.code === undefined) throw new Error(`mail "${mail.subject}" to ${to} has no code`);
      return mail.code;
    },
    count(to, subject) {
      return mails.filter((mail) => mail.to.includes(to.toLowerCase()) && (subject === undefined || subject.test(mail.subject))).length;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
