// Helpers for the account tests: an app with user auth on, mail to a sink, and the common flows.
import { post, startApp, type TestApp } from './app.js';
import type { SmtpSink } from './smtp-sink.js';

export const JWT_SECRET = 'test-jwt-secret-key-0123456789-abcdefghij';
export const PASSWORD = 'correct-horse-battery-7';

let counter = 0;
/** An address no other test uses. */
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}@example.test`;
}
/** A client IP no other test uses (needs TRUST_PROXY=true to be believed). */
export function uniqueIp(): string {
  counter++;
  return `10.${(counter >> 16) & 255}.${(counter >> 8) & 255}.${counter & 255}`;
}

/** A response body as JSON, typed loosely for assertions. */
export function json(response: Response): Promise<any> {
  return response.json();
}

export function authEnv(sink: SmtpSink | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ENABLE_USER_AUTH: 'true',
    JWT_SECRET_KEY: JWT_SECRET,
    DATABASE_URL: 'sqlite::memory:',
    ENABLE_RATE_LIMITING: 'false',
    TRUST_PROXY: 'true',
    ...(sink === undefined ? {} : { SMTP_HOST: sink.host, SMTP_PORT: String(sink.port) }),
    ...extra,
  };
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

/** Calls /api/v1/auth/* from one client IP (X-Forwarded-For). */
export class AuthClient {
  readonly ip: string;

  constructor(
    readonly app: TestApp,
    readonly sink: SmtpSink,
    ip?: string,
  ) {
    this.ip = ip ?? uniqueIp();
  }

  post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return post(`${this.app.url}/api/v1/auth${path}`, body, { 'x-forwarded-for': this.ip, ...headers });
  }

  me(accessToken: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.app.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${accessToken}`, 'x-forwarded-for': this.ip, ...headers } });
  }

  async register(email: string, password = PASSWORD, extra: Record<string, unknown> = {}): Promise<Response> {
    return this.post('/register', { email, password, ...extra });
  }

  /** The newest verification code mailed to `email` (waits for mail number after+1). */
  verificationCode(email: string, after = 0): Promise<string> {
    return this.sink.codeFor(email, /Verify your email/, after);
  }

  resetCode(email: string, after = 0): Promise<string> {
    return this.sink.codeFor(email, /Reset your password/, after);
  }

  /** Registered and verified; returns the user id. */
  async verifiedUser(email = uniqueEmail(), password = PASSWORD): Promise<{ email: string; password: string; userId: string }> {
    const registered = await this.register(email, password);
    if (registered.status !== 201) throw new Error(`register: ${registered.status} ${await registered.text()}`);
    const { user_id: userId } = (await registered.json()) as { user_id: string };
    const verified = await this.post('/verify-email', { email, code: await this.verificationCode(email) });
    if (verified.status !== 200) throw new Error(`verify: ${verified.status} ${await verified.text()}`);
    return { email, password, userId };
  }

  async login(email: string, password = PASSWORD): Promise<Tokens> {
    const response = await this.post('/login', { email, password });
    if (response.status !== 200) throw new Error(`login: ${response.status} ${await response.text()}`);
    return (await response.json()) as Tokens;
  }
}

export { post, startApp, type TestApp };
