import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from './support/private-stores.js';
import { json, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  fake.setDefault((req) => ({ kind: 'text', content: `re: ${req.body.messages[req.body.messages.length - 1].content}` }));
});

const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

async function health(app: TestApp): Promise<{ status: number; body: any }> {
  const response = await fetch(`${app.url}/health`);
  return { status: response.status, body: await json(response) };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Redis cache down or hung (#91, #92)', () => {
  let redis: PrivateRedis;
  let app: TestApp;
  let peek: Redis;
  const prefix = 'faults:';
  const completion = (body: unknown) => post(`${app.url}/api/v1/agent/completion`, body);
  const lastSent = () => fake.requests[fake.requests.length - 1]?.body.messages.map((m: any) => m.content);

  beforeAll(async () => {
    redis = await startPrivateRedis();
    // The in-process history window off: these turns must go through the Redis cache under test.
    app = await startApp(sessionEnv(fake.url, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, SESSION_HISTORY_MEMORY_MB: '0' }));
    await until(async () => (await health(app)).body.stores.redis === true, 'redis connected');
    peek = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 200 });
    peek.on('error', () => undefined);
    await peek.connect();
  });
  afterAll(async () => {
    peek?.disconnect();
    await app?.close();
    await redis?.stop();
  });

  it('reads the history tail through the cache, filled by each commit', async () => {
    const sid = (await json(await completion({ message: 'one' }))).session_id;
    await until(async () => (await peek.exists(`${prefix}session:${sid}:tail`)) === 1, 'the cache entry');
    // Doctor the cached copy (same version): the next turn must read it instead of the database.
    const entry = JSON.parse((await peek.get(`${prefix}session:${sid}:tail`))!);
    entry.messages[0].content = 'one (from the cache)';
    await peek.set(`${prefix}session:${sid}:tail`, JSON.stringify(entry));
    await completion({ message: 'two', session_id: sid });
    expect(lastSent()).toEqual(['one (from the cache)', 're: one', 'two']);
  });

  it('keeps serving from the database while Redis is down, shows it in /health, and recovers without a restart', async () => {
    const sid = (await json(await completion({ message: 'before the outage' }))).session_id;
    await redis.stop();
    await until(async () => (await health(app)).body.stores.redis === false, 'redis reported down');
    const down = await health(app);
    expect(down).toMatchObject({ status: 200, body: { status: 'degraded', stores: { db: true, redis: false } } });

    const { value: continued, ms } = await timed(() => completion({ message: 'during the outage', session_id: sid }));
    expect(continued.status).toBe(200);
    expect(ms).toBeLessThan(1500);
    expect(lastSent()).toEqual(['before the outage', 're: before the outage', 'during the outage']);
    const fresh = await completion({ message: 'new during the outage' });
    expect(fresh.status).toBe(200);
    expect((await fetch(`${app.url}/api/v1/agent/session/${sid}`)).status).toBe(200);
    expect(app.logText()).toMatch(/redis/i);

    await redis.start();
    await until(async () => (await health(app)).body.stores.redis === true, 'redis reported back', 15_000);
    const after = await completion({ message: 'after the outage', session_id: sid });
    expect(after.status).toBe(200);
    expect(lastSent()).toEqual(['before the outage', 're: before the outage', 'during the outage', 're: during the outage', 'after the outage']);
    // The cache is written again.
    await peek.connect().catch(() => undefined);
    await until(async () => (await peek.exists(`${prefix}session:${sid}:tail`).catch(() => 0)) === 1, 'the cache entry again');
  });

  it('never lets a hung Redis hang a turn (#92)', async () => {
    const sid = (await json(await completion({ message: 'before the hang' }))).session_id;
    redis.pause();
    try {
      const { value: response, ms } = await timed(() => completion({ message: 'during the hang', session_id: sid }));
      expect(response.status).toBe(200);
      // One cache read that times out (500 ms), then the database; the cache write is not waited for.
      expect(ms).toBeLessThan(1500);
      expect(lastSent()).toEqual(['before the hang', 're: before the hang', 'during the hang']);
      expect((await health(app)).body.stores.redis).toBe(false);
    } finally {
      redis.resume();
    }
    await until(async () => (await health(app)).body.stores.redis === true, 'redis answering again');
    expect((await completion({ message: 'after the hang', session_id: sid })).status).toBe(200);
  });
});

describe('PostgreSQL down (#93)', () => {
  let cluster: PrivatePostgres;
  let app: TestApp;
  const completion = (body: unknown) => post(`${app.url}/api/v1/agent/completion`, body);

  beforeAll(async () => {
    cluster = await startPrivatePostgres();
    app = await startApp(sessionEnv(fake.url, { DATABASE_URL: cluster.url, DB_CONNECT_TIMEOUT_SECONDS: '1' }));
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
  });

  it('answers only 200 or 503 (fast) while it goes down under load, loses nothing acknowledged, and recovers by itself', async () => {
    const sessions: string[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await completion({ message: `kept ${i}` });
      expect(response.status).toBe(200);
      sessions.push((await json(response)).session_id);
    }
    fake.setDefault((req) => ({ kind: 'text', content: `re: ${req.body.messages[req.body.messages.length - 1].content}`, delayMs: 10 }));

    // Each session takes turns one after another while the database is killed under it.
    const outcomes = new Map<string, Array<{ status: number; ms: number; body: any }>>();
    let stopped = false;
    const load = Promise.all(
      sessions.map(async (sid) => {
        const results: Array<{ status: number; ms: number; body: any }> = [];
        outcomes.set(sid, results);
        for (let turn = 0; turn < 40 && !(stopped && results.some((r) => r.status === 503)); turn++) {
          const { value: response, ms } = await timed(() => completion({ message: `turn ${turn}`, session_id: sid }));
          results.push({ status: response.status, ms, body: await json(response) });
        }
      }),
    );
    await fake.waitForRequests(fake.requests.length + 8);
    await cluster.stop();
    stopped = true;
    await load;

    const all = [...outcomes.values()].flat();
    expect(all.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    for (const result of all) {
      expect([200, 503]).toContain(result.status);
      expect(result.ms).toBeLessThan(2000);
      if (result.status === 503) expect(result.body).toEqual({ detail: 'The database is unavailable; retry shortly', code: 'STORE_UNAVAILABLE' });
    }
    for (const { value: response, ms } of await Promise.all([
      timed(() => fetch(`${app.url}/api/v1/agent/session/${sessions[0]}`)),
      timed(() => completion({ message: 'new while down' })),
    ])) {
      expect(response.status).toBe(503);
      expect(ms).toBeLessThan(2000);
    }
    expect(await health(app)).toMatchObject({ status: 503, body: { stores: { db: false } } });

    await cluster.start();
    await until(async () => (await health(app)).status === 200, 'the database back');
    // Every acknowledged turn is there, whole; no failed turn left anything behind.
    for (const sid of sessions) {
      const acknowledged = outcomes.get(sid)!.filter((r) => r.status === 200).length;
      const page = await json(await fetch(`${app.url}/api/v1/agent/session/${sid}/messages?after=0&limit=200`));
      expect(page.message_count).toBe(2 + 2 * acknowledged);
      expect(page.messages.map((m: any) => m.role)).toEqual(Array.from({ length: 1 + acknowledged }, () => ['user', 'assistant']).flat());
    }
    // Runs that failed while the database was down hand their sessions back once it returns,
    // well before their leases (60 s) would have run out.
    for (const sid of sessions) {
      await until(async () => (await completion({ message: 'after the outage', session_id: sid })).status === 200, 'the session released', 5000);
    }
  }, 60_000);
});
