import { spawnServer } from './support/server-process.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { decodeJwt, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, JWT_SECRET, PASSWORD, post, startApp, uniqueEmail, type TestApp, type Tokens, json } from './support/accounts.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

let sink: SmtpSink;
let upstream: FakeUpstream;
let app: TestApp;
let dir: string;
let sqlite: SQLite.Database;

beforeAll(async () => {
  sink = await startSmtpSink();
  upstream = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'accounts-tokens-'));
  app = await startApp(authEnv(sink, { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, OPENAI_BASE_URL: upstream.url, OPENAI_API_KEY: 'x' }));
  sqlite = new SQLite(join(dir, 'db.sqlite'), { readonly: true });
});

afterAll(async () => {
  sqlite.close();
  await app.close();
  await upstream.close();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new AuthClient(app, sink);
const secret = new TextEncoder().encode(JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

async function loggedIn(c = client()): Promise<{ c: AuthClient; tokens: Tokens; claims: JWTPayload; userId: string; email: string }> {
  const { email, userId } = await c.verifiedUser();
  const tokens = await c.login(email);
  return { c, tokens, claims: decodeJwt(tokens.access_token), userId, email };
}

/** A token signed with the real secret, from the real claims with `changes` applied. */
function forge(claims: JWTPayload, changes: JWTPayload = {}, header: Record<string, unknown> = {}, alg = 'HS256'): Promise<string> {
  const payload = { ...claims, ...changes };
  for (const [key, value] of Object.entries(changes)) if (value === undefined) delete payload[key];
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt', ...header } as any).sign(secret);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('access tokens (#30–#33)', () => {
  it('accepts a token forged with the right secret and claims (the control for the cases below)', async () => {
    const { c, claims } = await loggedIn();
    expect((await c.me(await forge(claims, { jti: 'another-id' }))).status).toBe(200);
  });

  it('refuses alg:none, HS512 with the same secret and a tampered payload (#30)', async () => {
    const { c, tokens, claims } = await loggedIn();
    const other = await loggedIn();
    const none = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
    const hs512 = await forge(claims, {}, {}, 'HS512');
    const [header, , signature] = tokens.access_token.split('.');
    const tampered = `${header}.${b64({ ...claims, sub: other.userId })}.${signature}`;
    for (const token of [none, hs512, tampered, 'not-a-jwt', `${tokens.access_token}x`]) {
      const response = await c.me(token);
      expect(response.status).toBe(401);
      expect(await json(response)).toEqual({ detail: 'Invalid or expired access token', code: 'UNAUTHORIZED' });
    }
  });

  it('refuses tokens that name their own key (jku, jwk, x5u) (#30)', async () => {
    const { c, claims } = await loggedIn();
    for (const header of [{ jku: 'http://evil.test/jwks' }, { x5u: 'http://evil.test/cert' }, { jwk: { kty: 'oct', k: 'AAAA' } }]) {
      expect((await c.me(await forge(claims, {}, header))).status).toBe(401);
    }
  });

  it('enforces exp and nbf with at most 30 s of tolerance, and refuses an iat in the future (#31)', async () => {
    const { c, claims } = await loggedIn();
    expect((await c.me(await forge(claims, { exp: now() - 60 }))).status).toBe(401);
    expect((await c.me(await forge(claims, { exp: now() - 10 }))).status).toBe(200); // within tolerance
    expect((await c.me(await forge(claims, { nbf: now() + 120 }))).status).toBe(401);
    expect((await c.me(await forge(claims, { iat: now() + 120 }))).status).toBe(401);
    for (const claim of ['exp', 'iat', 'nbf', 'sub', 'jti']) {
      expect((await c.me(await forge(claims, { [claim]: undefined }))).status, claim).toBe(401);
    }
  });

  it('checks iss, aud and typ (#32, #33)', async () => {
    const { c, claims } = await loggedIn();
    expect((await c.me(await forge(claims, { aud: 'someone-else' }))).status).toBe(401);
    expect((await c.me(await forge(claims, { iss: 'someone-else' }))).status).toBe(401);
    expect((await c.me(await forge(claims, {}, { typ: 'JWT' }))).status).toBe(401);
  });

  it('uses the immutable user id as sub, never the email (#33)', async () => {
    const { claims, userId, email } = await loggedIn();
    expect(claims.sub).toBe(userId);
    expect(JSON.stringify(claims)).not.toContain(email);
  });

  it('keeps token kinds apart: refresh token as Bearer, access token to /refresh, Google ID token as Bearer (#32)', async () => {
    const { c, tokens, userId } = await loggedIn();
    expect((await c.me(tokens.refresh_token)).status).toBe(401);
    expect((await c.post('/refresh', { refresh_token: tokens.access_token })).status).toBe(401);
    const { privateKey } = await generateKeyPair('RS256');
    const google = await new SignJWT({ email: 'x@gmail.com', email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .setSubject(userId)
      .setIssuer('https://accounts.google.com')
      .setAudience('agent-chassis-api')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
    expect((await c.me(google)).status).toBe(401);
  });

  it('takes the identity from the token and ignores X-User-ID next to it (#52)', async () => {
    const { c, tokens, userId } = await loggedIn();
    const other = await loggedIn();
    const me = await json(await c.me(tokens.access_token, { 'x-user-id': other.userId }));
    expect(me.id).toBe(userId);
  });

  it('/auth/me returns exactly the SPEC fields (#43)', async () => {
    const { c, tokens, userId, email } = await loggedIn();
    const me = await json(await c.me(tokens.access_token));
    expect(Object.keys(me).sort()).toEqual(['created_at', 'display_name', 'email', 'email_verified', 'has_google_auth', 'id', 'is_admin']);
    expect(me).toMatchObject({ id: userId, email, email_verified: true, has_google_auth: false, is_admin: false, display_name: null });
    expect(new Date(me.created_at).toISOString()).toBe(me.created_at);
    expect((await fetch(`${app.url}/api/v1/auth/me`)).status).toBe(401);
  });
});

describe('the agent endpoints with user auth on', () => {
  it('accept a Bearer access token and refuse requests without one', async () => {
    const { tokens } = await loggedIn();
    upstream.script({ kind: 'text', content: 'hi there' });
    const body = { messages: [{ role: 'user', content: 'hello' }] };
    const ok = await post(`${app.url}/api/v1/agent/completion`, body, { authorization: `Bearer ${tokens.access_token}` });
    expect(ok.status).toBe(200);
    expect((await json(ok)).content).toBe('hi there');
    expect((await post(`${app.url}/api/v1/agent/completion`, body)).status).toBe(401);
    expect((await post(`${app.url}/api/v1/agent/completion`, body, { authorization: `Bearer ${tokens.refresh_token}` })).status).toBe(401);
  });
});

describe('refresh tokens (#35–#40, #42)', () => {
  it('are opaque, 256-bit, stored only as SHA-256 with family, parent, expiry and revocation (#36)', async () => {
    const { c, tokens } = await loggedIn();
    expect(tokens.refresh_token).toMatch(/^rt_[A-Za-z0-9_-]{43}$/);
    const r1 = (await json(await c.post('/refresh', { refresh_token: tokens.refresh_token }))) as Tokens;
    const dump = JSON.stringify(['users', 'refresh_families', 'refresh_tokens', 'email_codes'].map((table) => sqlite.prepare(`select * from ${table}`).all()));
    for (const token of [tokens.refresh_token, r1.refresh_token, tokens.access_token, r1.access_token]) expect(dump).not.toContain(token);
    const row = sqlite.prepare('select * from refresh_tokens where token_hash = ?').get(createHash('sha256').update(r1.refresh_token).digest('hex')) as any;
    expect(row).toBeDefined();
    expect(row.parent_id).not.toBeNull();
    expect(row.rotated_at).toBeNull();
    const family = sqlite.prepare('select * from refresh_families where id = ?').get(row.family_id) as any;
    expect(family.revoked_at).toBeNull();
    expect(family.expires_at).toBeGreaterThan(Date.now());
  });

  it('rotate on every refresh, with no-store headers (#35, #37)', async () => {
    const { c, tokens } = await loggedIn();
    const response = await c.post('/refresh', { refresh_token: tokens.refresh_token });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('pragma')).toBe('no-cache');
    const r1 = (await json(response)) as Tokens;
    expect(r1.refresh_token).not.toBe(tokens.refresh_token);
    expect(r1.expires_in).toBe(1800);
    expect((await c.me(r1.access_token)).status).toBe(200);
    const r2 = await c.post('/refresh', { refresh_token: r1.refresh_token });
    expect(r2.status).toBe(200);
  });

  it('within the grace window, parallel refreshes with one token all get the same successor (#39)', async () => {
    const { c, tokens } = await loggedIn();
    const responses = await Promise.all(Array.from({ length: 5 }, () => c.post('/refresh', { refresh_token: tokens.refresh_token })));
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    const successors = new Set(await Promise.all(responses.map(async (response) => ((await json(response)) as Tokens).refresh_token)));
    expect(successors.size).toBe(1);
    const [successor] = [...successors];
    expect(successor).not.toBe(tokens.refresh_token);
    expect((await c.post('/refresh', { refresh_token: successor })).status).toBe(200); // the family is alive
  });

  it('within the grace window, a replayed token whose successor was already rotated revokes the family (#38)', async () => {
    const { c, tokens } = await loggedIn();
    const r1 = (await json(await c.post('/refresh', { refresh_token: tokens.refresh_token }))) as Tokens;
    const r2 = (await json(await c.post('/refresh', { refresh_token: r1.refresh_token }))) as Tokens;
    expect((await c.post('/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
    expect((await c.post('/refresh', { refresh_token: r2.refresh_token })).status).toBe(401);
  });

  it('logout revokes the family, its access tokens too, and is idempotent (#42)', async () => {
    const { c, tokens } = await loggedIn();
    const other = await c.login((await c.verifiedUser()).email); // an unrelated session survives
    for (let i = 0; i < 2; i++) {
      const response = await c.post('/logout', { refresh_token: tokens.refresh_token });
      expect(response.status).toBe(200);
      expect((await json(response)).success).toBe(true);
    }
    expect((await c.post('/logout', { refresh_token: 'rt_unknown' })).status).toBe(200);
    expect((await c.post('/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
    expect((await c.me(tokens.access_token)).status).toBe(401);
    expect((await c.me(other.access_token)).status).toBe(200);
  });
});

describe('reuse detection without grace (REFRESH_TOKEN_REUSE_INTERVAL_SECONDS=0)', () => {
  let strict: TestApp;
  beforeAll(async () => {
    strict = await startApp(authEnv(sink, { REFRESH_TOKEN_REUSE_INTERVAL_SECONDS: '0' }));
  });
  afterAll(() => strict.close());

  it('a rotated token presented again revokes the whole family (#38, #71)', async () => {
    const { c, tokens } = await loggedIn(new AuthClient(strict, sink));
    let current = tokens;
    const chain = [tokens];
    for (let i = 0; i < 3; i++) {
      current = (await json(await c.post('/refresh', { refresh_token: current.refresh_token }))) as Tokens;
      chain.push(current);
    }
    expect((await c.me(chain[3]!.access_token)).status).toBe(200);
    expect((await c.post('/refresh', { refresh_token: chain[0]!.refresh_token })).status).toBe(401);
    expect((await c.post('/refresh', { refresh_token: chain[3]!.refresh_token })).status).toBe(401);
    expect((await c.me(chain[3]!.access_token)).status).toBe(401);
    const reuse = strict.logs.find((line) => line.event === 'refresh_token_reuse');
    expect(reuse).toBeDefined();
    expect(strict.logText()).not.toContain(chain[0]!.refresh_token);
  });

  it('parallel refreshes with one token: one wins and the family is revoked', async () => {
    const { c, tokens } = await loggedIn(new AuthClient(strict, sink));
    const statuses = await Promise.all(Array.from({ length: 4 }, () => c.post('/refresh', { refresh_token: tokens.refresh_token }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 200).length).toBe(1);
    expect(statuses.filter((status) => status === 401).length).toBe(3);
  });
});

describe('refresh family lifetime (#40)', () => {
  it('ends JWT_REFRESH_TOKEN_EXPIRE_DAYS after login; rotating does not extend it', async () => {
    const short = await startApp(authEnv(sink, { JWT_REFRESH_TOKEN_EXPIRE_DAYS: '0.00002' })); // 1.73 s
    try {
      const { c, tokens } = await loggedIn(new AuthClient(short, sink));
      await new Promise((resolve) => setTimeout(resolve, 900));
      const r1 = await c.post('/refresh', { refresh_token: tokens.refresh_token });
      expect(r1.status).toBe(200);
      const { refresh_token: next } = (await json(r1)) as Tokens;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await c.post('/refresh', { refresh_token: next })).status).toBe(401);
    } finally {
      await short.close();
    }
  });
});

describe('password reset (#28)', () => {
  it('revokes refresh and access tokens, does not log in, mails a notice; the new password works', async () => {
    const { c, tokens, email } = await loggedIn();
    expect((await c.post('/password-reset', { email })).status).toBe(200);
    const code = await c.resetCode(email);
    const weak = await c.post('/password-reset/confirm', { email, code, new_password: 'password1' });
    expect(weak.status).toBe(400); // #4 on reset too; the code survives a refused password
    const confirmed = await c.post('/password-reset/confirm', { email, code, new_password: 'fresh-password-8' });
    expect(confirmed.status).toBe(200);
    const body = await json(confirmed);
    expect(body).toEqual({ success: true, message: expect.any(String) });
    expect(body).not.toHaveProperty('access_token');
    expect((await c.post('/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
    expect((await c.me(tokens.access_token)).status).toBe(401);
    expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(401);
    expect((await c.post('/login', { email, password: 'fresh-password-8' })).status).toBe(200);
    await sink.waitFor((mail) => mail.to.includes(email) && /password was changed/.test(mail.subject));
    expect((await c.post('/password-reset/confirm', { email, code, new_password: 'fresh-password-9' })).status).toBe(400); // single use
  });

  it('answers the same for existing, unknown and rate-limited addresses (#14)', async () => {
    const c = client();
    const { email } = await c.verifiedUser();
    const bodies = new Set<string>();
    for (const address of [email, uniqueEmail()]) {
      const response = await c.post('/password-reset', { email: address });
      expect(response.status).toBe(200);
      bodies.add(await response.text());
    }
    const limited = await c.post('/password-reset', { email }); // within a minute: no second mail, same answer
    expect(limited.status).toBe(200);
    bodies.add(await limited.text());
    expect(bodies.size).toBe(1);
    await c.resetCode(email);
    // A later reset's mail arriving means the limited request's background work is done too.
    const later = (await c.verifiedUser()).email;
    await c.post('/password-reset', { email: later });
    await c.resetCode(later);
    expect(sink.count(email, /Reset your password/)).toBe(1);
  });
});

describe('start-up (#34)', () => {
  it('refuses ENABLE_USER_AUTH=true with a 31-character JWT_SECRET_KEY: exit ≠ 0, the message names the variable, not the value', async () => {
    const short = 'S3cr3t-value-of-31-characters!!';
    expect(short).toHaveLength(31);
    const server = spawnServer({ ENABLE_USER_AUTH: 'true', JWT_SECRET_KEY: short, PORT: '0' });
    server.ready.catch(() => undefined);
    const started = Date.now();
    const code = await server.exited;
    const output = server.output();
    expect(Date.now() - started).toBeLessThan(5000 + 5000); // tsx compiles first on a cold cache
    expect(code).not.toBe(0);
    expect(output).toContain('JWT_SECRET_KEY');
    expect(output).not.toContain(short);
  });
});
