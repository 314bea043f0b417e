import { spawn } from 'node:child_process';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, startApp, uniqueEmail, type TestApp, type Tokens, json } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';
import { createPgSchema, REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';

const stores = await storesAvailable();

describe.skipIf(!stores.pg || !stores.redis)('accounts on PostgreSQL with counters in Redis, two instances', () => {
  let sink: SmtpSink;
  let schema: Awaited<ReturnType<typeof createPgSchema>>;
  let prefix: string;
  let first: TestApp;
  let second: TestApp;
  let db: pg.Client;
  let redis: Redis;

  beforeAll(async () => {
    sink = await startSmtpSink();
    schema = await createPgSchema();
    prefix = uniqueRedisPrefix();
    const env = authEnv(sink, { DATABASE_URL: schema.url, REDIS_URL: REDIS_TEST_URL, REDIS_KEY_PREFIX: prefix, REFRESH_TOKEN_REUSE_INTERVAL_SECONDS: '2' });
    first = await startApp(env);
    second = await startApp(env); // migrations are idempotent: the second start finds them applied
    db = new pg.Client({ connectionString: schema.url });
    await db.connect();
    redis = new Redis(REDIS_TEST_URL);
  });

  afterAll(async () => {
    redis.disconnect();
    await db.end();
    await first.close();
    await second.close();
    await schema.drop();
    await sink.close();
  });

  it('register, verify, login, me, refresh across instances; argon2id in the row, no raw code or token stored', async () => {
    const a = new AuthClient(first, sink);
    const email = uniqueEmail('pg');
    expect((await a.register(email)).status).toBe(201);
    const code = await a.verificationCode(email);
    const b = new AuthClient(second, sink, a.ip);
    expect((await b.post('/verify-email', { email, code })).status).toBe(200);
    const tokens = await b.login(email);
    expect((await a.me(tokens.access_token)).status).toBe(200);
    const rotated = (await json(await a.post('/refresh', { refresh_token: tokens.refresh_token }))) as Tokens;
    expect((await b.me(rotated.access_token)).status).toBe(200);

    const user = (await db.query('select * from users where email = $1', [email])).rows[0];
    expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=1\$/);
    expect(user.email_verified).toBe(1);
    expect(typeof user.created_at).toBe('number');
    const dump = JSON.stringify([
      (await db.query('select * from users')).rows,
      (await db.query('select * from email_codes')).rows,
      (await db.query('select * from refresh_tokens')).rows,
    ]);
    for (const secret of [code, tokens.refresh_token, rotated.refresh_token, tokens.access_token]) expect(dump).not.toContain(secret);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    const values = await Promise.all(keys.map((key) => redis.get(key)));
    expect(JSON.stringify({ keys, values })).not.toContain(code);
  });

  it('shares the login limit: 5 failures spread over both instances, then 429 on either (#8, #19)', async () => {
    const a = new AuthClient(first, sink);
    const b = new AuthClient(second, sink, a.ip);
    const { email } = await a.verifiedUser();
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).post('/login', { email, password: 'wrong-password-1' }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
    expect((await a.post('/login', { email, password: PASSWORD })).status).toBe(429);
  });

  it('consumes a code once across instances (#23) and counts wrong tries atomically (#24)', async () => {
    const a = new AuthClient(first, sink);
    const b = new AuthClient(second, sink, a.ip);
    const email = uniqueEmail('pgcode');
    await a.register(email);
    const code = await a.verificationCode(email);
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).post('/verify-email', { email, code }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);

    const other = uniqueEmail('pgwrong');
    await a.register(other);
    const right = await a.verificationCode(other);
    const wrong = right === '000000' ? '000001' : '000000';
    await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).post('/verify-email', { email: other, code: wrong })));
    expect((await a.post('/verify-email', { email: other, code: right })).status).toBe(400);
    expect((await db.query('select attempts from email_codes where email = $1', [other])).rows[0].attempts).toBe(3);
  });

  it('rotates atomically: parallel refreshes on both instances get one successor (#39); after the grace window a replay revokes the family (#38)', async () => {
    const a = new AuthClient(first, sink);
    const b = new AuthClient(second, sink, a.ip);
    const { email } = await a.verifiedUser();
    const tokens = await a.login(email);
    const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).post('/refresh', { refresh_token: tokens.refresh_token })));
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const successors = new Set(await Promise.all(responses.map(async (response) => ((await json(response)) as Tokens).refresh_token)));
    expect(successors.size).toBe(1);
    expect((await db.query("select count(*)::int as n from refresh_tokens t join refresh_families f on f.id = t.family_id join users u on u.id = f.user_id where u.email = $1", [email])).rows[0].n).toBe(2);

    await new Promise((resolve) => setTimeout(resolve, 2100)); // REFRESH_TOKEN_REUSE_INTERVAL_SECONDS=2
    expect((await b.post('/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
    expect((await a.post('/refresh', { refresh_token: [...successors][0] })).status).toBe(401);
  });

  it('concurrent registrations of one email make one account, both answered 201 (#17)', async () => {
    const a = new AuthClient(first, sink);
    const email = uniqueEmail('pgdup');
    await Promise.all([a.register(email), new AuthClient(second, sink).register(email.toUpperCase())].map(async (response) => expect((await response).status).toBe(201)));
    expect((await db.query('select count(*)::int as n from users where email = $1', [email])).rows[0].n).toBe(1);
  });
});

describe('Redis goes down (#91)', () => {
  it('login limits keep holding in process: the 6th bad login is still 429', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const sink = await startSmtpSink();
    let app: TestApp | undefined;
    try {
      const probe = new Redis(`redis://127.0.0.1:${port}`, { retryStrategy: (times) => (times > 50 ? null : 100) });
      probe.on('error', () => undefined); // refused until redis-server is up
      await probe.ping();
      app = await startApp(authEnv(sink, { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_KEY_PREFIX: uniqueRedisPrefix() }));
      const c = new AuthClient(app, sink);
      const { email } = await c.verifiedUser();
      expect((await c.post('/login', { email, password: 'wrong-password-1' })).status).toBe(401); // counted in Redis
      await probe.shutdown('NOSAVE').catch(() => undefined);
      probe.disconnect();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await c.post('/login', { email, password: 'wrong-password-1' })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
      expect((await c.post('/login', { email, password: PASSWORD })).status).toBe(429);
    } finally {
      await app?.close();
      await sink.close();
      redisProcess.kill('SIGKILL');
    }
  });
});
