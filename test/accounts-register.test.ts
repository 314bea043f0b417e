import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, post, startApp, uniqueEmail, type TestApp, json } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

const INVALID_CODE = { detail: 'Invalid or expired code', code: 'VALIDATION_FAILED' };

let sink: SmtpSink;
let app: TestApp;
let dir: string;
let sqlite: SQLite.Database;

beforeAll(async () => {
  sink = await startSmtpSink();
  dir = mkdtempSync(join(tmpdir(), 'accounts-register-'));
  app = await startApp(authEnv(sink, { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` }));
  sqlite = new SQLite(join(dir, 'db.sqlite'), { readonly: true });
});

afterAll(async () => {
  sqlite.close();
  await app.close();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new AuthClient(app, sink);
const userRow = (email: string) => sqlite.prepare('select * from users where email = ?').get(email) as Record<string, any> | undefined;

describe('ENABLE_USER_AUTH=false', () => {
  it('answers 503 naming the setting on every /auth route, before validating the body', async () => {
    const off = await startApp({});
    try {
      for (const path of ['register', 'verify-email', 'resend-verification', 'login', 'refresh', 'logout', 'google', 'password-reset', 'password-reset/confirm']) {
        const response = await post(`${off.url}/api/v1/auth/${path}`, { nonsense: true });
        expect(response.status, path).toBe(503);
        expect((await json(response)).detail).toContain('ENABLE_USER_AUTH=true');
      }
      const me = await fetch(`${off.url}/api/v1/auth/me`);
      expect(me.status).toBe(503);
    } finally {
      await off.close();
    }
  });
});

describe('register', () => {
  it('creates an account (201), mails a 6-digit code and stores an argon2id hash with OWASP parameters (#1)', async () => {
    const c = client();
    const email = uniqueEmail();
    const response = await c.register(email, PASSWORD, { display_name: 'Ada' });
    expect(response.status).toBe(201);
    const body = await json(response);
    expect(Object.keys(body).sort()).toEqual(['email', 'message', 'user_id']);
    expect(body.email).toBe(email);
    const code = await c.verificationCode(email);
    expect(code).toMatch(/^\d{6}$/);
    const row = userRow(email)!;
    expect(row.id).toBe(body.user_id);
    const params = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=1\$[A-Za-z0-9+/]{22}\$/.exec(row.password_hash);
    expect(params).not.toBeNull();
    expect(Number(params![1])).toBeGreaterThanOrEqual(19456);
    expect(Number(params![2])).toBeGreaterThanOrEqual(2);
    // #21: the code is stored only as a keyed hash
    const everything = JSON.stringify(sqlite.prepare('select * from email_codes').all()) + JSON.stringify(sqlite.prepare('select * from users').all());
    expect(everything).not.toContain(code);
  });

  it('ignores privileged fields in the body (#6)', async () => {
    const c = client();
    const email = uniqueEmail();
    expect((await c.register(email, PASSWORD, { is_admin: true, email_verified: true, id: 'chosen', token_version: 7 })).status).toBe(201);
    expect(userRow(email)).toMatchObject({ is_admin: 0, email_verified: 0, token_version: 0 });
    expect(userRow(email)!.id).not.toBe('chosen');
    await c.post('/verify-email', { email, code: await c.verificationCode(email) });
    const tokens = await c.login(email);
    const me = await json(await c.me(tokens.access_token));
    expect(me.is_admin).toBe(false);
    expect(me.email_verified).toBe(true); // only through the code
  });

  it('refuses prototype-poisoning keys with 400 and creates no account (#62)', async () => {
    const email = uniqueEmail();
    for (const poison of ['"__proto__":{"is_admin":true}', '"constructor":{"prototype":{"is_admin":true}}']) {
      const response = await fetch(`${app.url}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"email":"${email}","password":"${PASSWORD}",${poison}}`,
      });
      expect(response.status, poison).toBe(400);
      expect(typeof (await json(response)).detail).toBe('string');
    }
    expect(userRow(email)).toBeUndefined();
    // Nothing leaked onto shared prototypes: a normal account is still no admin.
    const c = client();
    const other = uniqueEmail();
    await c.register(other);
    await c.post('/verify-email', { email: other, code: await c.verificationCode(other) });
    expect((await json(await c.me((await c.login(other)).access_token))).is_admin).toBe(false);
  });

  it('applies the password rule and the common-password blocklist (#4), with a clear 400', async () => {
    const c = client();
    const cases: Array<[string, RegExp]> = [
      ['abc1234', /at least 8 characters/],
      ['abcdefgh', /letter and one digit/],
      ['12345678', /letter and one digit/],
      ['password1', /too common/],
      ['Password1', /too common/],
      ['qwerty123', /too common/],
    ];
    for (const [password, detail] of cases) {
      const response = await c.register(uniqueEmail(), password);
      expect(response.status, password).toBe(400);
      expect((await json(response)).detail).toMatch(detail);
    }
    expect((await c.register(uniqueEmail(), 'abcdefg8')).status).toBe(201); // exactly 8, letter + digit
  });

  it('checks the password exactly as sent, up to 1024 characters (#3)', async () => {
    const c = client();
    const long = `${'x'.repeat(99)}1`;
    const { email } = await c.verifiedUser(uniqueEmail(), long);
    expect((await c.post('/login', { email, password: long.slice(0, 72) })).status).toBe(401);
    expect((await c.post('/login', { email, password: `${long} ` })).status).toBe(401);
    expect((await c.post('/login', { email, password: long.toUpperCase() })).status).toBe(401);
    expect((await c.post('/login', { email, password: long })).status).toBe(200);
    const atLimit = `${'y'.repeat(1023)}2`;
    expect((await c.register(uniqueEmail(), atLimit)).status).toBe(201);
    const tooLong = await c.register(uniqueEmail(), `${atLimit}z`);
    expect(tooLong.status).toBe(400);
    expect((await json(tooLong)).detail).toMatch(/1024/);
    expect((await c.post('/login', { email, password: `${atLimit}z` })).status).toBe(400);
  });

  it('refuses CR/LF in email and display_name, and bounds both (#29, #65)', async () => {
    const c = client();
    for (const email of ['a@x.com\r\nBcc: b@y.com', 'a@x.com\nBcc: b@y.com', 'not-an-email', `${'a'.repeat(250)}@x.com`]) {
      const response = await c.register(email, PASSWORD);
      expect(response.status, JSON.stringify(email)).toBe(400);
      expect(await json(response)).toHaveProperty('detail');
    }
    expect((await c.register(uniqueEmail(), PASSWORD, { display_name: 'Eve\r\nBcc: x@y.com' })).status).toBe(400);
    expect((await c.register(uniqueEmail(), PASSWORD, { display_name: 'n'.repeat(101) })).status).toBe(400);
    expect((await c.register(uniqueEmail(), PASSWORD, { display_name: 'n'.repeat(100) })).status).toBe(201);
  });

  it('builds mails from fixed text, never from the Host header (#29)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email, PASSWORD, {}).then(() => undefined);
    const evil = await fetch(`${app.url}/api/v1/auth/password-reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', host: 'evil.test', 'x-forwarded-host': 'evil.test', 'x-forwarded-for': c.ip },
      body: JSON.stringify({ email }),
    });
    expect(evil.status).toBe(200);
    await c.resetCode(email);
    await c.verificationCode(email);
    for (const mail of sink.mails) {
      expect(mail.raw).not.toContain('evil.test');
      expect(mail.raw).toMatch(/Content-Type: text\/plain/);
      expect(mail.raw).toMatch(/Content-Type: text\/html/);
    }
  });

  it('answers an existing email (any case) with the same 201 shape, makes no account and mails the owner (#17, #65)', async () => {
    // Its own app on the same database, with no per-address mail window, so the second sign-up's notice goes out at once.
    const noWindow = await startApp(authEnv(sink, { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, VERIFICATION_RATE_LIMIT_SECONDS: '0' }));
    try {
      const c = new AuthClient(noWindow, sink);
      const email = uniqueEmail('Dup');
      const first = await c.register(email, PASSWORD);
      expect(first.status).toBe(201);
      const firstBody = await json(first);
      // Verified first: a repeated sign-up on an account nobody verified replaces its password (issue 11, test/security-accounts.test.ts).
      await c.post('/verify-email', { email, code: await c.verificationCode(email) });
      const again = await c.register(`  ${email.toUpperCase()} `, 'another-pass-9');
      expect(again.status).toBe(201);
      const againBody = await json(again);
      expect(Object.keys(againBody).sort()).toEqual(Object.keys(firstBody).sort());
      expect(againBody.message).toBe(firstBody.message);
      expect(againBody.email).toBe(firstBody.email);
      expect(againBody.user_id).not.toBe(firstBody.user_id);
      expect(sqlite.prepare('select count(*) as n from users where email = ?').get(email.toLowerCase())).toEqual({ n: 1 });
      const notice = await sink.waitFor((mail) => mail.to.includes(email.toLowerCase()) && /already have an account/.test(mail.subject));
      expect(notice.code).toBeUndefined();
      // the first password still works, the second did not replace it
      expect((await c.post('/login', { email, password: 'another-pass-9' })).status).toBe(401);
      expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
    } finally {
      await noWindow.close();
    }
  });
});

describe('verification codes', () => {
  it('gives one answer for every failure: unknown email, wrong, used code (#16)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    const code = await c.verificationCode(email);
    const wrong = code === '000000' ? '000001' : '000000';
    const bodies = [];
    for (const body of [{ email: uniqueEmail(), code }, { email, code: wrong }, { email, code: 'abc' }]) {
      const response = await c.post('/verify-email', body);
      expect(response.status).toBe(400);
      bodies.push(await response.text());
    }
    expect((await c.post('/verify-email', { email, code })).status).toBe(200);
    const used = await c.post('/verify-email', { email, code });
    expect(used.status).toBe(400);
    bodies.push(await used.text());
    for (const body of bodies) expect(JSON.parse(body)).toEqual(INVALID_CODE);
  });

  it('kills a code after VERIFICATION_MAX_ATTEMPTS wrong tries, the last try at the limit still counting (#24)', async () => {
    const c = client();
    const atLimit = uniqueEmail();
    await c.register(atLimit);
    const code1 = await c.verificationCode(atLimit);
    const wrong1 = code1 === '999999' ? '999998' : '999999';
    for (let i = 0; i < 2; i++) expect((await c.post('/verify-email', { email: atLimit, code: wrong1 })).status).toBe(400);
    expect((await c.post('/verify-email', { email: atLimit, code: code1 })).status).toBe(200); // 3rd try, right

    const past = uniqueEmail();
    await c.register(past);
    const code2 = await c.verificationCode(past);
    const wrong2 = code2 === '999999' ? '999998' : '999999';
    for (let i = 0; i < 3; i++) expect((await c.post('/verify-email', { email: past, code: wrong2 })).status).toBe(400);
    expect((await c.post('/verify-email', { email: past, code: code2 })).status).toBe(400);
  });

  it('counts parallel wrong tries atomically (#24)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    const code = await c.verificationCode(email);
    const wrong = code === '123456' ? '654321' : '123456';
    // 9, not 10: the 10th try would meet the per-email cap (#27) and hide what this test is about.
    await Promise.all(Array.from({ length: 9 }, () => c.post('/verify-email', { email, code: wrong })));
    const right = await c.post('/verify-email', { email, code });
    expect(right.status).toBe(400);
    expect(await json(right)).toEqual(INVALID_CODE);
  });

  it('lets exactly one of 10 parallel right submissions use a code (#23)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    const code = await c.verificationCode(email);
    const statuses = await Promise.all(Array.from({ length: 10 }, () => c.post('/verify-email', { email, code }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 400)).toHaveLength(9);
  });

  it('binds a code to its purpose: a verification code cannot reset the password (#22)', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    const code = await c.verificationCode(email);
    const response = await c.post('/password-reset/confirm', { email, code, new_password: 'brand-new-pass-1' });
    expect(response.status).toBe(400);
    expect(await json(response)).toEqual(INVALID_CODE);
    expect((await c.post('/verify-email', { email, code })).status).toBe(200);
  });
});

describe('resend-verification', () => {
  it('answers unknown, verified and unverified addresses alike, 1 per minute per address string (#15)', async () => {
    const c = client();
    // Accounts made more than a minute ago: seeded straight into the database.
    const verified = uniqueEmail();
    const unverified = uniqueEmail();
    const writable = new SQLite(join(dir, 'db.sqlite'));
    const insert = writable.prepare('insert into users (id, email, password_hash, email_verified, created_at, updated_at) values (?, ?, null, ?, 0, 0)');
    insert.run(`seed-${verified}`, verified, 1);
    insert.run(`seed-${unverified}`, unverified, 0);
    writable.close();

    const bodies: string[] = [];
    for (const email of [uniqueEmail(), verified, unverified]) {
      const first = await c.post('/resend-verification', { email });
      expect(first.status).toBe(200);
      bodies.push(await first.text());
      const second = await c.post('/resend-verification', { email });
      expect(second.status).toBe(429);
      const retryAfter = Number(second.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await json(second)).toHaveProperty('detail');
    }
    expect(new Set(bodies).size).toBe(1);
    await c.verificationCode(unverified); // the real one got its code
    expect(sink.count(verified, /Verify your email/)).toBe(0);
  });

  it('counts the mail sent by register: a resend right after it is limited', async () => {
    const c = client();
    const email = uniqueEmail();
    await c.register(email);
    await c.verificationCode(email);
    expect((await c.post('/resend-verification', { email })).status).toBe(429);
  });
});

describe('codes across resends (VERIFICATION_RATE_LIMIT_SECONDS=0)', () => {
  let fast: TestApp;
  beforeAll(async () => {
    fast = await startApp(authEnv(sink, { VERIFICATION_RATE_LIMIT_SECONDS: '0', EMAIL_RATE_LIMIT_PER_IP: '100000' }));
  });
  afterAll(() => fast.close());

  it('a new code invalidates the previous one (#26)', async () => {
    const c = new AuthClient(fast, sink);
    const email = uniqueEmail();
    await c.register(email);
    const old = await c.verificationCode(email);
    expect((await c.post('/resend-verification', { email })).status).toBe(200);
    const fresh = await c.verificationCode(email, 1);
    if (fresh !== old) expect((await c.post('/verify-email', { email, code: old })).status).toBe(400);
    expect((await c.post('/verify-email', { email, code: fresh })).status).toBe(200);
  });

  it('caps code checks at 10 per email per hour across resends (#27)', async () => {
    const c = new AuthClient(fast, sink);
    const email = uniqueEmail();
    await c.register(email);
    let code = await c.verificationCode(email);
    let tries = 0;
    for (let cycle = 0; cycle < 4; cycle++) {
      if (cycle > 0) {
        expect((await c.post('/resend-verification', { email })).status).toBe(200);
        code = await c.verificationCode(email, cycle);
      }
      const wrong = code === '000000' ? '000001' : '000000';
      for (let i = 0; i < 3 && tries < 10; i++, tries++) {
        const response = await new AuthClient(fast, sink).post('/verify-email', { email, code: wrong }); // a new IP each time
        expect(response.status).toBe(400);
      }
    }
    expect(tries).toBe(10);
    expect((await c.post('/resend-verification', { email })).status).toBe(200);
    const last = await c.verificationCode(email, 4);
    const eleventh = await c.post('/verify-email', { email, code: last });
    expect(eleventh.status).toBe(429);
    expect(Number(eleventh.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('draws codes uniformly from all 10^6 values, zero-padded (#20)', async () => {
    const c = new AuthClient(fast, sink);
    const email = uniqueEmail();
    await c.register(email);
    const n = 200;
    for (let i = 0; i < n; i++) await c.post('/resend-verification', { email });
    await sink.waitFor(() => sink.count(email, /Verify your email/) >= n + 1, 20_000);
    const codes = sink.mails.filter((mail) => mail.to.includes(email)).map((mail) => mail.code!);
    for (const code of codes) expect(code).toMatch(/^\d{6}$/);
    const leadingZero = codes.filter((code) => code.startsWith('0')).length;
    // Binomial(201, 0.1): mean 20, sd 4.3; [4, 40] is ±3.7 sd.
    expect(leadingZero).toBeGreaterThanOrEqual(4);
    expect(leadingZero).toBeLessThanOrEqual(40);
    expect(new Set(codes).size).toBeGreaterThan(codes.length - 5);
  });
});

describe('code expiry', () => {
  it('expires a code VERIFICATION_CODE_EXPIRE_MINUTES after issue; wrong tries do not extend it (#25)', async () => {
    const short = await startApp(authEnv(sink, { VERIFICATION_CODE_EXPIRE_MINUTES: '0.02' })); // 1.2 s
    try {
      const c = new AuthClient(short, sink);
      const email = uniqueEmail();
      await c.register(email);
      const code = await c.verificationCode(email);
      const wrong = code === '000000' ? '000001' : '000000';
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await c.post('/verify-email', { email, code: wrong })).status).toBe(400);
      await new Promise((resolve) => setTimeout(resolve, 800));
      const late = await c.post('/verify-email', { email, code });
      expect(late.status).toBe(400);
      expect(await json(late)).toEqual(INVALID_CODE);
    } finally {
      await short.close();
    }
  });
});

describe('per-IP limits on code and mail endpoints (#18)', () => {
  it('verify-email: 30 per IP per 5 minutes, then 429 with Retry-After', async () => {
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await c.post('/verify-email', { email: uniqueEmail(), code: '123456' })).status);
    expect(statuses.slice(0, 30).every((status) => status === 400)).toBe(true);
    expect(statuses[30]).toBe(429);
    const limited = await c.post('/password-reset/confirm', { email: uniqueEmail(), code: '123456', new_password: 'brand-new-pass-1' });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect((await json(limited)).detail).toMatch(/Too many/);
    expect((await client().post('/verify-email', { email: uniqueEmail(), code: '123456' })).status).toBe(400); // other IPs unaffected
  });

  it('mail endpoints: 30 per IP per hour, then 429', async () => {
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await c.post(i % 2 === 0 ? '/resend-verification' : '/password-reset', { email: uniqueEmail() })).status);
    expect(statuses.every((status) => status === 200)).toBe(true);
    const over = await c.register(uniqueEmail());
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
  });
});

describe('mail server down', () => {
  it('register answers 503 with a detail; the account exists and can ask for a code again', async () => {
    const flaky = await startSmtpSink();
    const port = flaky.port;
    await flaky.close();
    const down = await startApp(authEnv(undefined, { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port) }));
    let back: SmtpSink | undefined;
    try {
      const email = uniqueEmail();
      const c = new AuthClient(down, flaky);
      const response = await c.register(email);
      expect(response.status).toBe(503);
      expect((await json(response)).detail).toMatch(/resend-verification/);
      back = await startSmtpSink(port);
      const again = new AuthClient(down, back, c.ip);
      expect((await again.post('/resend-verification', { email })).status).toBe(200);
      const code = await again.verificationCode(email);
      expect((await again.post('/verify-email', { email, code })).status).toBe(200);
      expect((await again.post('/login', { email, password: PASSWORD })).status).toBe(200);
    } finally {
      await down.close();
      await back?.close();
    }
  });
});

describe('dev outbox (no SMTP_HOST)', () => {
  it('writes the mail, code included, to the log, where it can be used', async () => {
    const dev = await startApp(authEnv(undefined));
    try {
      const email = uniqueEmail('outbox');
      const c = new AuthClient(dev, sink);
      expect((await c.register(email)).status).toBe(201);
      const line = dev.logs.find((entry) => entry.outbox?.to === email);
      expect(line?.msg).toMatch(/DEV OUTBOX/);
      const code = /Your code: (\d{6})/.exec(line!.outbox.text)![1];
      expect((await c.post('/verify-email', { email, code })).status).toBe(200);
      expect(sink.count(email)).toBe(0);
    } finally {
      await dev.close();
    }
  });
});
