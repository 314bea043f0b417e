import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, startApp, uniqueEmail, type TestApp, type Tokens, json } from './support/accounts.js';
import { GOOGLE_CLIENT_ID, startFakeGoogle, type FakeGoogle } from './support/google-jwks.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

let sink: SmtpSink;
let google: FakeGoogle;
let app: TestApp;

const googleEnv = (fake: FakeGoogle, extra: Record<string, string> = {}) =>
  authEnv(sink, { GOOGLE_CLIENT_ID, GOOGLE_JWKS_URL: fake.url, GOOGLE_ISSUERS: 'accounts.google.com,https://accounts.google.com', ...extra });

beforeAll(async () => {
  sink = await startSmtpSink();
  google = await startFakeGoogle();
  app = await startApp(googleEnv(google));
});

afterAll(async () => {
  await app.close();
  await google.close();
  await sink.close();
});

const client = (target = app) => new AuthClient(target, sink);

async function signIn(c: AuthClient, idToken: string): Promise<Response> {
  return c.post('/google', { id_token: idToken });
}

async function meOf(c: AuthClient, response: Response) {
  const tokens = (await json(response)) as Tokens;
  return json(await c.me(tokens.access_token));
}

describe('Google ID tokens (#44)', () => {
  it('a valid token creates a verified account and returns tokens with no-store headers (#35)', async () => {
    const c = client();
    const email = uniqueEmail('g');
    const response = await signIn(c, await google.token({ email, name: 'Grace\nHopper' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('pragma')).toBe('no-cache');
    const me = await meOf(c, response);
    expect(me).toMatchObject({ email, email_verified: true, has_google_auth: true, display_name: 'Grace Hopper' });
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(401); // no password on this account
  });

  it('refuses wrong aud, wrong iss, expired, HS256, unknown kid and bad signature with 401', async () => {
    const c = client();
    const sub = 'bad-token-subject';
    const now = Math.floor(Date.now() / 1000);
    const hs256 = await new SignJWT({ email: 'x@example.test', email_verified: true })
      .setProtectedHeader({ alg: 'HS256', kid: 'whatever' })
      .setSubject(sub)
      .setIssuer('https://accounts.google.com')
      .setAudience(GOOGLE_CLIENT_ID)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('a-shared-secret-anyone-could-pick'));
    const cases: Record<string, string> = {
      'wrong aud': await google.token({ sub, aud: 'another-client' }),
      'wrong iss': await google.token({ sub, iss: 'https://evil.example' }),
      expired: await google.token({ sub, exp: now - 120, iat: now - 3720 }),
      HS256: hs256,
      'unknown kid': await google.token({ sub }, { kid: 'no-such-kid' }),
      'bad signature': await google.token({ sub }, { key: await google.strangerKey() }),
      garbage: 'not.a.token',
    };
    for (const [name, token] of Object.entries(cases)) {
      const response = await signIn(c, token);
      expect(response.status, name).toBe(401);
      expect(await json(response), name).toEqual({ detail: 'Invalid Google ID token', code: 'UNAUTHORIZED' });
    }
    expect((await signIn(c, await google.token({ sub, iss: 'accounts.google.com' }))).status).toBe(200); // both listed issuers work
  });

  it('GOOGLE_CLIENT_ID unset → 503 naming the setting (#49)', async () => {
    const none = await startApp(authEnv(sink));
    try {
      const response = await client(none).post('/google', { id_token: await google.token() });
      expect(response.status).toBe(503);
      expect((await json(response)).detail).toContain('GOOGLE_CLIENT_ID');
    } finally {
      await none.close();
    }
  });
});

describe('accounts and linking (#45–#47)', () => {
  it('keys the account on sub: the same sub with a changed email is the same user (#45)', async () => {
    const c = client();
    const sub = `sub-${uniqueEmail()}`;
    const first = await meOf(c, await signIn(c, await google.token({ sub, email: uniqueEmail('old') })));
    const second = await meOf(c, await signIn(c, await google.token({ sub, email: uniqueEmail('new') })));
    expect(second.id).toBe(first.id);
  });

  it('links a password account only when Google says the email is verified (#46)', async () => {
    const c = client();
    const { email, userId } = await c.verifiedUser();
    const unverified = await signIn(c, await google.token({ email, email_verified: false }));
    expect(unverified.status).toBe(403);
    const stringTrue = await signIn(c, await google.token({ email, email_verified: 'true' }));
    expect(stringTrue.status).toBe(403); // only the boolean true counts
    const tokens = await c.login(email);
    expect((await json(await c.me(tokens.access_token))).has_google_auth).toBe(false);

    const linked = await signIn(c, await google.token({ email: email.toUpperCase(), email_verified: true }));
    expect(linked.status).toBe(200);
    const me = await meOf(c, linked);
    expect(me).toMatchObject({ id: userId, has_google_auth: true });
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(200); // a verified account keeps its password
  });

  it("linking an unverified password account drops the password someone else may have set", async () => {
    const c = client();
    const email = uniqueEmail('prehijack');
    await c.register(email, 'attacker-pass-1');
    const linked = await signIn(c, await google.token({ email }));
    expect(linked.status).toBe(200);
    expect((await meOf(c, linked)).email_verified).toBe(true);
    expect((await c.post('/login', { email, password: 'attacker-pass-1' })).status).toBe(401);
  });

  it('a different sub with an already linked email → 409, never a relink (#47)', async () => {
    const c = client();
    const email = uniqueEmail('twice');
    const first = await signIn(c, await google.token({ sub: `a-${email}`, email }));
    expect(first.status).toBe(200);
    const firstId = (await meOf(c, first)).id;
    const second = await signIn(c, await google.token({ sub: `b-${email}`, email }));
    expect(second.status).toBe(409);
    expect(await json(second)).toHaveProperty('detail');
    expect((await meOf(c, await signIn(c, await google.token({ sub: `a-${email}`, email })))).id).toBe(firstId);
  });

  it('an unverified Google email never creates an account (#46)', async () => {
    const c = client();
    const email = uniqueEmail('nov');
    const response = await signIn(c, await google.token({ email, email_verified: false }));
    expect(response.status).toBe(403);
    expect((await json(response)).detail).toMatch(/not verified/);
    expect((await c.register(email)).status).toBe(201);
    await c.verificationCode(email); // a fresh account was made: there was none before
  });
});

describe('the key set (#48, #49)', () => {
  it('is cached: 20 logins fetch it at most once; a new kid triggers exactly one refetch', async () => {
    const fake = await startFakeGoogle();
    const cached = await startApp(googleEnv(fake, { GOOGLE_JWKS_COOLDOWN_SECONDS: '0.3' }));
    try {
      const c = client(cached);
      for (let i = 0; i < 20; i++) expect((await signIn(c, await fake.token())).status).toBe(200);
      expect(fake.hits).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 400)); // past the cooldown
      await fake.rotate();
      expect((await signIn(c, await fake.token())).status).toBe(200);
      expect(fake.hits).toBe(2);
      // unknown kids within the cooldown do not hammer the key server
      for (let i = 0; i < 5; i++) expect((await signIn(c, await fake.token({}, { kid: `nope-${i}` }))).status).toBe(401);
      expect(fake.hits).toBeLessThanOrEqual(3);
    } finally {
      await cached.close();
      await fake.close();
    }
  });

  it('key server down: a warm cache keeps logins working; a cold one answers 503 at once', async () => {
    const fake = await startFakeGoogle();
    const warm = await startApp(googleEnv(fake));
    const cold = await startApp(googleEnv(fake));
    try {
      expect((await signIn(client(warm), await fake.token())).status).toBe(200);
      fake.mode = 'down';
      expect((await signIn(client(warm), await fake.token())).status).toBe(200);
      const response = await signIn(client(cold), await fake.token());
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBeTruthy();
      expect((await json(response)).detail).toMatch(/keys could not be fetched/);
    } finally {
      await warm.close();
      await cold.close();
      await fake.close();
    }
  });

  it('a hung key server gives 503 within 5 s, never a hang', async () => {
    const fake = await startFakeGoogle();
    const cold = await startApp(googleEnv(fake));
    try {
      fake.mode = 'hang';
      const started = Date.now();
      const response = await signIn(client(cold), await fake.token());
      const elapsed = Date.now() - started;
      expect(response.status).toBe(503);
      expect(elapsed).toBeLessThan(6000);
    } finally {
      await cold.close();
      await fake.close();
    }
  });

  it('a refused connection (nothing listening) gives 503, not 500', async () => {
    const fake = await startFakeGoogle();
    const url = fake.url;
    const token = await fake.token();
    await fake.close();
    const cold = await startApp(authEnv(sink, { GOOGLE_CLIENT_ID, GOOGLE_JWKS_URL: url }));
    try {
      expect((await signIn(client(cold), token)).status).toBe(503);
    } finally {
      await cold.close();
    }
  });
});
