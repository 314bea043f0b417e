import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, startApp, uniqueEmail, uniqueIp, type TestApp, json } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

const GENERIC_401 = '{"detail":"Invalid email or password","code":"UNAUTHORIZED"}';

let sink: SmtpSink;
let app: TestApp;
let dir: string;
let db: SQLite.Database;

beforeAll(async () => {
  sink = await startSmtpSink();
  dir = mkdtempSync(join(tmpdir(), 'accounts-login-'));
  app = await startApp(authEnv(sink, { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, JWT_ACCESS_TOKEN_EXPIRE_MINUTES: '2' }));
  db = new SQLite(join(dir, 'db.sqlite'));
});

afterAll(async () => {
  db.close();
  await app.close();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new AuthClient(app, sink);

function seedUser(email: string, passwordHash: string | null, fields: Record<string, unknown> = {}): string {
  const id = `seed-${Math.random().toString(36).slice(2)}`;
  db.prepare('insert into users (id, email, password_hash, email_verified, google_id, created_at, updated_at) values (?, ?, ?, 1, ?, 0, 0)').run(id, email, passwordHash, fields.google_id ?? null);
  return id;
}

describe('login', () => {
  it('returns tokens with no-store headers and expires_in = minutes × 60 (#35)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    const response = await c.post('/login', { email, password: PASSWORD });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('pragma')).toBe('no-cache');
    const body = await json(response);
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type']);
    expect(body.token_type).toBe('bearer');
    expect(body.expires_in).toBe(120);
  });

  it('says "not verified" (403) only after the password checks out (#13)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    const wrong = await c.post('/login', { email, password: 'wrong-password-1' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toBe(GENERIC_401);
    const right = await c.post('/login', { email, password: PASSWORD });
    expect(right.status).toBe(403);
    expect((await json(right)).detail).toMatch(/not verified/);
  });

  it('gives byte-identical 401s for an unknown email, a wrong password and a Google-only account (#11)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    const googleOnly = uniqueEmail('google');
    seedUser(googleOnly, null, { google_id: `sub-${googleOnly}` });
    const answers = [];
    for (const body of [{ email: uniqueEmail(), password: PASSWORD }, { email, password: 'wrong-password-1' }, { email: googleOnly, password: PASSWORD }]) {
      const response = await c.post('/login', body);
      answers.push(`${response.status} ${await response.text()}`);
    }
    expect(answers).toEqual([`401 ${GENERIC_401}`, `401 ${GENERIC_401}`, `401 ${GENERIC_401}`]);
  });

  it('accepts a legacy bcrypt $2b$ hash and rehashes it to argon2id (#2)', async () => {
    const email = uniqueEmail('legacy');
    const legacy = bcrypt.hashSync(PASSWORD, 10).replace(/^\$2a\$/, '$2b$');
    expect(legacy.startsWith('$2b$')).toBe(true);
    seedUser(email, legacy);
    const c = client();
    expect((await c.post('/login', { email, password: 'wrong-password-1' })).status).toBe(401);
    expect((db.prepare('select password_hash from users where email = ?').get(email) as any).password_hash).toBe(legacy);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
    expect((db.prepare('select password_hash from users where email = ?').get(email) as any).password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
  });

  it('refuses a bcrypt login with more than 72 bytes, which bcrypt would have truncated (#3)', async () => {
    const email = uniqueEmail('legacy72');
    const long = `${'a'.repeat(71)}1`;
    seedUser(email, bcrypt.hashSync(long, 4));
    const c = client();
    expect((await c.post('/login', { email, password: `${long}extra` })).status).toBe(401);
    expect((await c.post('/login', { email, password: long })).status).toBe(200);
  });
});

describe('login limits', () => {
  it('5 failures per IP, then 429 with Retry-After even for the right password (#7)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    for (let i = 0; i < 5; i++) expect((await c.post('/login', { email, password: `wrong-password-${i}` })).status).toBe(401);
    const right = await c.post('/login', { email, password: PASSWORD });
    expect(right.status).toBe(429);
    const retryAfter = Number(right.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(await json(right)).toHaveProperty('detail');
    expect((await client().post('/login', { email, password: PASSWORD })).status).toBe(200); // another IP is fine
  });

  it('counts only failures: 4 failures, a success, then 5 more failures are allowed before 429', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    for (let i = 0; i < 4; i++) expect((await c.post('/login', { email, password: 'wrong-password-1' })).status).toBe(401);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
    expect((await c.post('/login', { email, password: 'wrong-password-1' })).status).toBe(401);
    expect((await c.post('/login', { email, password: 'wrong-password-1' })).status).toBe(429);
  });

  it('20 parallel wrong logins from one IP: exactly 5 × 401 and 15 × 429 (#8)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    const statuses = await Promise.all(Array.from({ length: 20 }, () => c.post('/login', { email, password: 'wrong-password-1' }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(15);
  });

  it('10 failures per email across IPs, then 429; other emails unaffected; reset still works (#9)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    const other = await c.verifiedUser();
    for (let i = 0; i < 10; i++) expect((await client().post('/login', { email, password: 'wrong-password-1' })).status).toBe(401);
    const eleventh = await client().post('/login', { email, password: PASSWORD });
    expect(eleventh.status).toBe(429);
    expect(Number(eleventh.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await client().post('/login', { email: other.email, password: PASSWORD })).status).toBe(200);

    expect((await client().post('/password-reset', { email })).status).toBe(200);
    const code = await c.resetCode(email);
    expect((await client().post('/password-reset/confirm', { email, code, new_password: 'a-new-password-2' })).status).toBe(200);
    expect((await client().post('/login', { email, password: 'a-new-password-2' })).status).toBe(200);
  });

  it('without TRUST_PROXY the socket address counts, whatever X-Forwarded-For says (#10)', async () => {
    const direct = await startApp(authEnv(sink, { TRUST_PROXY: 'false' }));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await new AuthClient(direct, sink, uniqueIp()).post('/login', { email: uniqueEmail(), password: PASSWORD })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    } finally {
      await direct.close();
    }
  });

  it('with TRUST_PROXY only the hop added by the proxy counts, not ones the client wrote (#10)', async () => {
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await c.post('/login', { email: uniqueEmail(), password: PASSWORD }, { 'x-forwarded-for': `${uniqueIp()}, ${c.ip}` })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });
});

describe('disabled users (#41)', () => {
  it('rejects the access token and the refresh token of a user disabled in the database', async () => {
    const c = client();
    const { email, userId } = await c.verifiedUser();
    const tokens = await c.login(email);
    expect((await c.me(tokens.access_token)).status).toBe(200);
    db.prepare('update users set disabled = 1 where id = ?').run(userId);
    expect((await c.me(tokens.access_token)).status).toBe(401);
    expect((await c.post('/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(403);
  });
});

describe('password hashing under load (#5)', () => {
  it('bounds hashes in flight: the excess gets 503 with Retry-After, never another 5xx', async () => {
    const busy = await startApp(authEnv(sink, { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '2', LOGIN_RATE_LIMIT_ATTEMPTS: '1000', LOGIN_ACCOUNT_RATE_LIMIT_ATTEMPTS: '1000' }));
    try {
      const c = new AuthClient(busy, sink);
      const { email } = await c.verifiedUser();
      const responses = await Promise.all(Array.from({ length: 12 }, () => c.post('/login', { email, password: 'wrong-password-1' })));
      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 401).length).toBeGreaterThanOrEqual(3);
      expect(statuses.filter((status) => status === 503).length).toBeGreaterThan(0);
      expect(statuses.every((status) => status === 401 || status === 503)).toBe(true);
      const refused = responses.find((response) => response.status === 503)!;
      expect(refused.headers.get('retry-after')).toBe('1');
      expect((await json(refused)).detail).toMatch(/password checks/);
      // refused attempts are not counted as failures
      expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
    } finally {
      await busy.close();
    }
  });

  it('keeps /health fast while 50 wrong-password logins run at once', async () => {
    const loaded = await startApp(authEnv(sink, { LOGIN_RATE_LIMIT_ATTEMPTS: '1000', LOGIN_ACCOUNT_RATE_LIMIT_ATTEMPTS: '1000', PASSWORD_HASH_QUEUE: '100' }));
    try {
      const c = new AuthClient(loaded, sink);
      const { email } = await c.verifiedUser();
      const logins = Promise.all(Array.from({ length: 50 }, () => c.post('/login', { email, password: 'wrong-password-1' }).then((r) => r.status)));
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        expect((await fetch(`${loaded.url}/health`)).status).toBe(200);
        latencies.push(performance.now() - started);
      }
      const statuses = await logins;
      expect(statuses.every((status) => status === 401 || status === 503)).toBe(true);
      latencies.sort((a, b) => a - b);
      console.log(`health under 50 parallel logins: p50 ${latencies[10]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
      expect(latencies.at(-1)).toBeLessThan(250);
    } finally {
      await loaded.close();
    }
  });
});

describe('logs (#71)', () => {
  it('never contain passwords, tokens or codes when mail goes over SMTP', async () => {
    const c = client();
    const email = uniqueEmail();
    const password = 'Secret-Passphrase-4242';
    await c.register(email, password);
    const code = await c.verificationCode(email);
    await c.post('/verify-email', { email, code });
    await c.post('/login', { email, password: 'Wrong-Passphrase-4242' });
    const tokens = await c.login(email, password);
    await c.me(tokens.access_token);
    const refreshed = await json(await c.post('/refresh', { refresh_token: tokens.refresh_token }));
    await c.post('/password-reset', { email });
    const resetCode = await c.resetCode(email);
    await c.post('/password-reset/confirm', { email, code: resetCode, new_password: 'Another-Passphrase-77' });
    const logs = app.logText();
    for (const secret of [password, 'Wrong-Passphrase-4242', 'Another-Passphrase-77', code, resetCode, tokens.access_token, tokens.refresh_token, refreshed.refresh_token]) {
      expect(logs).not.toContain(secret);
    }
    expect(app.logs.some((line) => line.event === 'login_failed')).toBe(true);
    expect(app.logs.some((line) => line.event === 'login_succeeded')).toBe(true);
    expect(app.logs.some((line) => line.event === 'password_reset')).toBe(true);
  });

  it('writes an email with a line break as one JSON log line (#72)', async () => {
    const c = client();
    const before = app.logText().split('\n').length;
    await c.post('/login', { email: 'a@x.com\n{"event":"forged"}', password: PASSWORD });
    const added = app.logText().split('\n').slice(before);
    expect(added.every((line) => JSON.parse(line))).toBeTruthy();
    expect(app.logs.some((line) => line.event === 'forged')).toBe(false);
  });
});
