// Issue 11 (security review), account side: pre-account takeover (1), the account routes' body
// limit (2), register+resend enumeration (5), plain addr-spec emails (8), Google claims (9).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, startApp, uniqueEmail, type TestApp, json } from './support/accounts.js';
import { GOOGLE_CLIENT_ID, startFakeGoogle, type FakeGoogle } from './support/google-jwks.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

let sink: SmtpSink;
let google: FakeGoogle;
let app: TestApp;
let dir: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  google = await startFakeGoogle();
  dir = mkdtempSync(join(tmpdir(), 'security-accounts-'));
  app = await startApp(authEnv(sink, { GOOGLE_CLIENT_ID, GOOGLE_JWKS_URL: google.url, DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` }));
});

afterAll(async () => {
  await app.close();
  await google.close();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An account written straight to the database: it exists, but no mail limit was spent on its address. */
function seedUser(email: string, verified: boolean): string {
  const db = new SQLite(join(dir, 'db.sqlite'));
  try {
    db.prepare("insert into users (id, email, password_hash, email_verified, created_at, updated_at) values (?, ?, '$argon2id$seeded', ?, 0, 0)").run(`seed-${email}`, email, verified ? 1 : 0);
  } finally {
    db.close();
  }
  return email;
}

const client = () => new AuthClient(app, sink);
const ATTACKER_PASSWORD = 'attacker-chose-this-1';

describe('item 1: pre-account takeover', () => {
  it("an attacker's unverified sign-up password never opens the account once the mailbox owner signs up and verifies", async () => {
    const attacker = client();
    const victim = client();
    const email = uniqueEmail('victim');
    expect((await attacker.register(email, ATTACKER_PASSWORD)).status).toBe(201);
    await attacker.verificationCode(email); // the attacker's sign-up mailed the victim a code

    // The victim signs up later with their own password and gets the same 201; within the address's
    // mail window no second mail goes out, and the code already in the mailbox verifies the account.
    expect((await victim.register(email, PASSWORD)).status).toBe(201);
    const code = await victim.verificationCode(email);
    expect((await victim.post('/verify-email', { email, code })).status).toBe(200);

    expect((await attacker.post('/login', { email, password: ATTACKER_PASSWORD })).status).toBe(401);
    expect((await victim.post('/login', { email, password: PASSWORD })).status).toBe(200);
  });

  it('the full scenario of the review (mail window passed): the victim gets a fresh code, the first one dies, only their password works', async () => {
    const open = await startApp(authEnv(sink, { VERIFICATION_RATE_LIMIT_SECONDS: '0' }));
    try {
      const attacker = new AuthClient(open, sink);
      const victim = new AuthClient(open, sink);
      const email = uniqueEmail('victim2');
      await attacker.register(email, ATTACKER_PASSWORD);
      const attackerCode = await attacker.verificationCode(email);
      const before = sink.count(email, /Verify your email/);
      expect((await victim.register(email, PASSWORD)).status).toBe(201);
      const victimCode = await victim.verificationCode(email, before);
      // not an "account exists" notice sending them to resend-verification
      expect(sink.count(email, /already have an account/)).toBe(0);
      if (victimCode !== attackerCode) expect((await attacker.post('/verify-email', { email, code: attackerCode })).status).toBe(400);
      expect((await victim.post('/verify-email', { email, code: victimCode })).status).toBe(200);
      expect((await attacker.post('/login', { email, password: ATTACKER_PASSWORD })).status).toBe(401);
      expect((await victim.post('/login', { email, password: PASSWORD })).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('a Google sign-in on an account nobody verified drops the password set before (and keeps a verified one)', async () => {
    const c = client();
    const email = uniqueEmail('glink');
    await c.register(email, ATTACKER_PASSWORD);
    expect((await c.post('/google', { id_token: await google.token({ email }) })).status).toBe(200);
    expect((await c.post('/login', { email, password: ATTACKER_PASSWORD })).status).toBe(401);

    const owner = client();
    const verified = await owner.verifiedUser(uniqueEmail('gkeep'));
    expect((await owner.post('/google', { id_token: await google.token({ email: verified.email }) })).status).toBe(200);
    expect((await owner.post('/login', { email: verified.email, password: PASSWORD })).status).toBe(200);
  });

  it('a repeated sign-up on a verified account changes nothing and mails an "account exists" notice', async () => {
    const c = client();
    const { email } = await c.verifiedUser(uniqueEmail('done'));
    expect((await c.register(email, ATTACKER_PASSWORD)).status).toBe(201);
    expect((await c.post('/login', { email, password: ATTACKER_PASSWORD })).status).toBe(401);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200);
  });
});

describe('item 5: register + resend spend the same limits on every path', () => {
  it('register X then resend X answers 429 alike for a new, an unverified and a verified address', async () => {
    const f = client();
    const results: Record<string, number[]> = {};
    for (const [kind, email] of [
      ['new', uniqueEmail('new')],
      ['unverified', seedUser(uniqueEmail('unv'), false)],
      ['verified', seedUser(uniqueEmail('ver'), true)],
    ] as const) {
      const registered = await f.register(email, PASSWORD);
      const resent = await f.post('/resend-verification', { email });
      results[kind] = [registered.status, resent.status];
    }
    expect(results).toEqual({ new: [201, 429], unverified: [201, 429], verified: [201, 429] });
  });

  it('each path sends at most one mail per window, so repeated sign-ups cannot flood a mailbox', async () => {
    const f = client();
    const verified = seedUser(uniqueEmail('flood'), true);
    for (let i = 0; i < 3; i++) expect((await f.register(verified, PASSWORD)).status).toBe(201);
    await sink.waitFor((mail) => mail.to.includes(verified) && /already have an account/.test(mail.subject));
    const unverified = seedUser(uniqueEmail('flood-unv'), false);
    for (let i = 0; i < 3; i++) expect((await f.register(unverified, PASSWORD)).status).toBe(201);
    await f.verificationCode(unverified);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sink.count(verified)).toBe(1);
    expect(sink.count(unverified)).toBe(1);
  });
});

describe('item 8: only a plain addr-spec is an email', () => {
  it('refuses display names, quoted parts, brackets and lists on register, resend and reset, and sends no mail', async () => {
    const c = client();
    const odd = ['ceo<attacker@evil.com>', '"ceo＠corp.com"<attacker@evil.com>', 'x,attacker@evil.com', 'ceo@corp.com <attacker@evil.com>', '"a b"@evil.com', 'a%b@evil.com', 'user@[127.0.0.1]', 'a..b@evil.com'];
    for (const email of odd) {
      const registered = await c.register(email, PASSWORD);
      expect(registered.status, email).toBe(400);
      expect(await json(registered), email).toMatchObject({ code: 'VALIDATION_FAILED', detail: expect.stringContaining('plain address') });
      expect((await c.post('/resend-verification', { email })).status, email).toBe(400);
      expect((await c.post('/password-reset', { email })).status, email).toBe(400);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sink.mails.filter((mail) => mail.to.some((to) => to.includes('evil.com')))).toEqual([]);
  });

  it("still accepts ordinary addresses (plus tags, dots, hyphens, subdomains, an apostrophe)", async () => {
    const c = client();
    for (const local of ['first.last', 'first+tag', "o'neil", 'a_b-c']) {
      const email = `${local}-${Math.random().toString(36).slice(2, 8)}@mail.sub-domain.example.test`;
      expect((await c.register(email, PASSWORD)).status, email).toBe(201);
    }
  });

  it('a Google token whose email is not a plain address is refused (401), making no account', async () => {
    const c = client();
    const response = await c.post('/google', { id_token: await google.token({ email: 'ceo<attacker@evil.com>' }) });
    expect(response.status).toBe(401);
  });
});

describe('item 9: Google claims', () => {
  it('email_verified must be the boolean true: the string "true" links no account', async () => {
    const c = client();
    const existing = seedUser(uniqueEmail('gstr'), false);
    const response = await c.post('/google', { id_token: await google.token({ email: existing, email_verified: 'true' }) });
    expect(response.status).toBe(403);
    expect((await c.post('/google', { id_token: await google.token({ email: uniqueEmail('gstr-new'), email_verified: 'true' }) })).status).toBe(403);
  });

  it('an aud array with other audiences needs azp = our client id', async () => {
    const c = client();
    const aud = ['someone-else.apps.googleusercontent.com', GOOGLE_CLIENT_ID];
    expect((await c.post('/google', { id_token: await google.token({ email: uniqueEmail('aud1'), aud }) })).status).toBe(401);
    expect((await c.post('/google', { id_token: await google.token({ email: uniqueEmail('aud2'), aud, azp: 'someone-else.apps.googleusercontent.com' }) })).status).toBe(401);
    expect((await c.post('/google', { id_token: await google.token({ email: uniqueEmail('aud3'), aud, azp: GOOGLE_CLIENT_ID }) })).status).toBe(200);
    expect((await c.post('/google', { id_token: await google.token({ email: uniqueEmail('aud4'), aud: [GOOGLE_CLIENT_ID] }) })).status).toBe(200);
  });
});

describe('item 2: account routes read small bodies only', () => {
  it('answers 413 to a body over 8 KiB on every account route, before reading it; 8 KiB itself is read', async () => {
    const c = client();
    for (const path of ['/register', '/login', '/verify-email', '/resend-verification', '/refresh', '/logout', '/google', '/password-reset', '/password-reset/confirm']) {
      const over = await c.post(path, { email: 'a@example.test', pad: 'x'.repeat(8 * 1024) });
      expect(over.status, path).toBe(413);
      expect(await json(over), path).toMatchObject({ code: 'BODY_TOO_LARGE' });
    }
    // at the limit: 8192 bytes exactly is parsed (and then refused by the schema, not the size)
    const base = JSON.stringify({ email: 'a@example.test', password: '' });
    const atLimit = JSON.stringify({ email: 'a@example.test', password: 'p'.repeat(8 * 1024 - base.length) });
    expect(Buffer.byteLength(atLimit)).toBe(8 * 1024);
    expect((await c.post('/login', atLimit)).status).not.toBe(413);
  });
});
