import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/index.js';
import { connectRedis, type RedisConnection } from '../src/redis/index.js';
import { HistoryCache, SessionStore } from '../src/sessions/index.js';
import { ChassisError } from '../src/errors.js';
import { createPgSchema, REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';
import { assistant, json, openSessionDatabase, silentLog, user } from './support/sessions.js';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';

const stores = await storesAvailable();

interface Backend {
  name: string;
  available: boolean;
  open(): Promise<{ database: Database; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    available: true,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'sessions-store-'));
      const database = await openSessionDatabase(`sqlite:${join(dir, 'test.db')}`);
      return {
        database,
        async cleanup() {
          await database.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    available: stores.pg,
    async open() {
      const schema = await createPgSchema();
      const database = await openSessionDatabase(schema.url);
      return {
        database,
        async cleanup() {
          await database.close();
          await schema.drop();
        },
      };
    },
  },
];

describe.each(backends)('session store contract on $name', (backend) => {
  let database: Database;
  let store: SessionStore;
  let cleanup: () => Promise<void>;
  let counter = 0;
  const id = () => `store-test-${counter++}`;

  beforeAll(async () => {
    if (!backend.available) return;
    ({ database, cleanup } = await backend.open());
    store = new SessionStore(database);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it.skipIf(!backend.available)('creates a session with its first messages and reads it back', async () => {
    const sid = id();
    const created = await store.create({ id: sid, ownerId: 'alice', systemPrompt: 'be brief', model: 'm1', metadata: { topic: 'x', n: 1 } }, [user('hi'), assistant('hello')]);
    expect(created).toMatchObject({ id: sid, ownerId: 'alice', isPublic: false, whitelist: [], blacklist: [], systemPrompt: 'be brief', model: 'm1', metadata: { topic: 'x', n: 1 }, messageCount: 2, nextSeq: 3 });
    expect(await store.get(sid)).toEqual(created);
    expect(await store.tail(sid, 10)).toEqual([user('hi'), assistant('hello')]);
    expect(await store.get('no-such-session')).toBeUndefined();
  });

  it.skipIf(!backend.available)('holds a lease until release, and lets an expired lease be taken', async () => {
    const sid = id();
    await store.create({ id: sid, ownerId: null }, [user('q')]);
    expect((await store.acquire(sid, 'run-a', 60_000)).status).toBe('held');
    expect((await store.acquire(sid, 'run-b', 60_000)).status).toBe('busy');
    expect(await store.renew(sid, 'run-a', 60_000)).toBe(true);
    expect(await store.renew(sid, 'run-b', 60_000)).toBe(false);
    await store.release(sid, 'run-b'); // not the holder: no effect
    expect((await store.acquire(sid, 'run-b', 60_000)).status).toBe('busy');
    await store.release(sid, 'run-a');
    // A lease that is already past its end (a crashed holder) is free to take.
    expect((await store.acquire(sid, 'run-c', -1)).status).toBe('held');
    expect((await store.acquire(sid, 'run-d', 60_000)).status).toBe('held');
    expect((await store.acquire('no-such-session', 'run-e', 60_000)).status).toBe('missing');
  });

  it.skipIf(!backend.available)('lets the access check refuse a caller before any lease is held or any holder named', async () => {
    const sid = id();
    await store.create({ id: sid, ownerId: 'alice' }, [user('q')]);
    const refuse = () => {
      throw new ChassisError(403, 'FORBIDDEN', 'not yours');
    };
    // Refused on a free session: the error comes back, and the session stays free.
    await expect(store.acquire(sid, 'run-stranger', 60_000, refuse)).rejects.toMatchObject({ status: 403 });
    const seen: string[] = [];
    const held = await store.acquire(sid, 'run-a', 60_000, (session) => void seen.push(session.ownerId ?? ''));
    expect(held.status).toBe('held');
    expect(seen.at(-1)).toBe('alice');
    // Refused on a busy session: the refusal, not "busy" with the holder's run id.
    await expect(store.acquire(sid, 'run-stranger', 60_000, refuse)).rejects.toMatchObject({ status: 403 });
    expect(await store.acquire(sid, 'run-b', 60_000)).toEqual({ status: 'busy', holder: 'run-a' });
    expect(await store.renew(sid, 'run-a', 60_000)).toBe(true);
  });

  it.skipIf(!backend.available)('appends a turn atomically under the lease, applying only the changes given', async () => {
    const sid = id();
    await store.create({ id: sid, ownerId: 'alice', systemPrompt: 'p1', model: 'm1', metadata: { v: 1 } }, [user('1'), assistant('2')]);
    const lease = await store.acquire(sid, 'run-a', 60_000);
    expect(lease.status).toBe('held');
    const outcome = await store.append(sid, 'run-a', [user('3'), assistant('4')], { model: 'm2' });
    expect(outcome.status).toBe('appended');
    if (outcome.status !== 'appended') return;
    expect(outcome.session).toMatchObject({ messageCount: 4, nextSeq: 5, systemPrompt: 'p1', model: 'm2', metadata: { v: 1 } });
    expect(outcome.session.updatedAt).toBeGreaterThanOrEqual(outcome.session.createdAt);
    const page = await store.page(sid, { limit: 10 });
    expect(page.messages.map((m) => [m.seq, m.message.content])).toEqual([
      [1, '1'],
      [2, '2'],
      [3, '3'],
      [4, '4'],
    ]);
    // The commit let go of the lease.
    expect((await store.acquire(sid, 'run-b', 60_000)).status).toBe('held');
    // A run that lost its lease writes nothing.
    expect((await store.append(sid, 'run-a', [user('lost')], { metadata: { v: 2 } })).status).toBe('lease_lost');
    expect(await store.get(sid)).toMatchObject({ messageCount: 4, nextSeq: 5, metadata: { v: 1 } });
    expect((await store.append(sid, 'run-b', [user('5')], { systemPrompt: 'p2', metadata: { v: 3 } })).status).toBe('appended');
    expect(await store.get(sid)).toMatchObject({ messageCount: 5, systemPrompt: 'p2', model: 'm2', metadata: { v: 3 } });
    expect((await store.append('no-such-session', 'run-b', [user('x')], {})).status).toBe('missing');
  });

  it.skipIf(!backend.available)('reads the tail and pages by seq in both directions', async () => {
    const sid = id();
    await store.create({ id: sid, ownerId: null }, Array.from({ length: 12 }, (_, i) => user(`m${i + 1}`)));
    const contents = (messages: { message: { content: string | null } }[]) => messages.map((m) => m.message.content);
    expect((await store.tail(sid, 3)).map((m) => m.content)).toEqual(['m10', 'm11', 'm12']);
    const latest = await store.page(sid, { limit: 5 });
    expect(contents(latest.messages)).toEqual(['m8', 'm9', 'm10', 'm11', 'm12']);
    expect(latest.hasMore).toBe(true);
    const older = await store.page(sid, { limit: 5, before: 8 });
    expect(contents(older.messages)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
    expect(older.hasMore).toBe(true);
    expect((await store.page(sid, { limit: 5, before: 3 })).hasMore).toBe(false);
    const first = await store.page(sid, { limit: 5, after: 0 });
    expect(contents(first.messages)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(first.hasMore).toBe(true);
    const last = await store.page(sid, { limit: 5, after: 10 });
    expect(contents(last.messages)).toEqual(['m11', 'm12']);
    expect(last.hasMore).toBe(false);
    expect(contents((await store.page(sid, { limit: 10, after: 3, before: 6 })).messages)).toEqual(['m4', 'm5']);
  });

  it.skipIf(!backend.available)("lists an owner's sessions newest first, each exactly once across pages", async () => {
    const owner = `owner-${id()}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const sid = id();
      ids.push(sid);
      await store.create({ id: sid, ownerId: owner }, [user(`${i}`)]);
    }
    await store.create({ id: id(), ownerId: 'someone-else' }, [user('x')]);
    // Touch the oldest: it becomes the newest.
    await store.acquire(ids[0]!, 'run', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 2));
    await store.append(ids[0]!, 'run', [user('again')], {});

    const seen: string[] = [];
    let cursor;
    do {
      const page: Awaited<ReturnType<SessionStore['listOwned']>> = await store.listOwned(owner, 3, cursor);
      expect(page.sessions.length).toBeLessThanOrEqual(3);
      seen.push(...page.sessions.map((s) => s.id));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(seen[0]).toBe(ids[0]);
  });

  it.skipIf(!backend.available)('changes access only from the version it read', async () => {
    const sid = id();
    const created = await store.create({ id: sid, ownerId: 'alice' }, [user('q')]);
    const lists = { isPublic: true, whitelist: ['bob'], blacklist: ['eve'] };
    expect(await store.setAccess(sid, created.aclVersion, lists)).toBe(true);
    expect(await store.setAccess(sid, created.aclVersion, { isPublic: false, whitelist: [], blacklist: [] })).toBe(false);
    expect(await store.get(sid)).toMatchObject({ ...lists, aclVersion: created.aclVersion + 1 });
  });

  it.skipIf(!backend.available)('deletes a session with its messages', async () => {
    const sid = id();
    await store.create({ id: sid, ownerId: 'alice' }, [user('q'), assistant('a')]);
    expect(await store.delete(sid)).toBe(true);
    expect(await store.get(sid)).toBeUndefined();
    expect(await store.tail(sid, 10)).toEqual([]);
    expect(await store.delete(sid)).toBe(false);
    // The id can be used again: nothing of the old session is left behind.
    const again = await store.create({ id: sid, ownerId: 'bob' }, [user('new')]);
    expect(again.messageCount).toBe(1);
    expect(await store.tail(sid, 10)).toEqual([user('new')]);
  });

  it.skipIf(!backend.available)('turns a store failure into 503 STORE_UNAVAILABLE', async () => {
    const { database: doomed, cleanup: dispose } = await backend.open();
    const doomedStore = new SessionStore(doomed);
    await doomed.close();
    const failure = await doomedStore.get('x').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ChassisError);
    expect(failure).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect((failure as ChassisError).detail).not.toMatch(/select|sqlite|postgres/i);
    await dispose().catch(() => undefined);
  });
});

describe.skipIf(!stores.redis)('session history cache on Redis', () => {
  let redis: RedisConnection;
  let cache: HistoryCache;
  beforeAll(async () => {
    redis = connectRedis(REDIS_TEST_URL, uniqueRedisPrefix(), silentLog);
    await new Promise<void>((resolve) => redis.client.once('ready', () => resolve()));
    cache = new HistoryCache(redis, 60, silentLog);
  });
  afterAll(async () => {
    await redis.close();
  });

  it('answers only for the exact version and size it was filled for', async () => {
    await cache.put('s1', 5, 100, [user('a'), assistant('b')]);
    expect(await cache.get('s1', 5, 100)).toEqual([user('a'), assistant('b')]);
    expect(await cache.get('s1', 6, 100)).toBeUndefined();
    expect(await cache.get('s1', 5, 50)).toBeUndefined();
    expect(await cache.get('s2', 5, 100)).toBeUndefined();
    const ttl = await redis.client.ttl(`${redis.prefix}session:s1:tail`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await cache.drop('s1');
    expect(await cache.get('s1', 5, 100)).toBeUndefined();
  });
});

describe.skipIf(!stores.pg || !stores.redis)('two instances on one PostgreSQL and Redis', () => {
  let fake: FakeUpstream;
  let first: TestApp;
  let second: TestApp;
  let drop: () => Promise<void>;
  const key = { 'x-api-key': 'k' };
  const as = (userId: string) => ({ ...key, 'x-user-id': userId });

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const schema = await createPgSchema();
    drop = schema.drop;
    const env = {
      ENABLE_PERSISTENCE: 'true',
      DATABASE_URL: schema.url,
      REDIS_URL: REDIS_TEST_URL,
      REDIS_KEY_PREFIX: uniqueRedisPrefix(),
      CHASSIS_API_KEY: 'k',
      OPENAI_BASE_URL: fake.url,
      UPSTREAM_MAX_RETRIES: '0',
      LOG_LEVEL: 'warn',
    };
    first = await startApp(env);
    second = await startApp(env);
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await fake?.close();
    await drop?.();
  });

  it('continues through one instance a session created through the other, with the whole history', async () => {
    fake.reset();
    fake.script({ kind: 'text', content: 'one' }, { kind: 'text', content: 'two' }, { kind: 'text', content: 'three' });
    const created = await post(`${first.url}/api/v1/agent/completion`, { message: 'first', system_prompt: 'sys', model: 'm-x' }, as('alice'));
    expect(created.status).toBe(200);
    const { session_id: sid } = await json(created);
    const continued = await post(`${second.url}/api/v1/agent/completion`, { message: 'second', session_id: sid }, as('alice'));
    expect(continued.status).toBe(200);
    expect((await json(continued)).session_id).toBe(sid);
    // Back on the first: its cache (filled by the second's commit) and the database agree.
    const third = await post(`${first.url}/api/v1/agent/completion`, { message: 'third', session_id: sid }, as('alice'));
    expect(third.status).toBe(200);
    expect(fake.requests[1]?.body.model).toBe('m-x');
    expect(fake.requests[2]?.body.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: 'second' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'third' },
    ]);
    const view = await fetch(`${second.url}/api/v1/agent/session/${sid}`, { headers: as('alice') });
    expect(await json(view)).toMatchObject({ session_id: sid, message_count: 6, model: 'm-x' });
  });

  it('applies an access change made on one instance at once on the other (#56)', async () => {
    fake.reset();
    const created = await post(`${first.url}/api/v1/agent/completion`, { message: 'mine' }, as('alice'));
    const { session_id: sid } = await json(created);
    const share = await fetch(`${first.url}/api/v1/agent/session/${sid}/access`, {
      method: 'PATCH',
      headers: { ...as('alice'), 'content-type': 'application/json' },
      body: JSON.stringify({ add_to_whitelist: ['bob'] }),
    });
    expect(share.status).toBe(200);
    expect((await fetch(`${second.url}/api/v1/agent/session/${sid}`, { headers: as('bob') })).status).toBe(200);
    const ban = await fetch(`${first.url}/api/v1/agent/session/${sid}/access`, {
      method: 'PATCH',
      headers: { ...as('alice'), 'content-type': 'application/json' },
      body: JSON.stringify({ remove_from_whitelist: ['bob'], add_to_blacklist: ['bob'] }),
    });
    expect(ban.status).toBe(200);
    expect((await fetch(`${second.url}/api/v1/agent/session/${sid}`, { headers: as('bob') })).status).toBe(403);
    expect((await post(`${second.url}/api/v1/agent/completion`, { message: 'let me in', session_id: sid }, as('bob'))).status).toBe(403);
  });

  it('lets only one of two runs on one session, one per instance, through; the other gets 409 (#87)', async () => {
    fake.reset();
    const created = await post(`${first.url}/api/v1/agent/completion`, { message: 'start' }, as('alice'));
    const { session_id: sid } = await json(created);
    fake.setDefault({ kind: 'text', content: 'slow answer', delayMs: 100 });
    const [a, b] = await Promise.all([
      post(`${first.url}/api/v1/agent/completion`, { message: 'via first', session_id: sid }, as('alice')),
      post(`${second.url}/api/v1/agent/completion`, { message: 'via second', session_id: sid }, as('alice')),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const busy = await json(a.status === 409 ? a : b);
    expect(busy).toMatchObject({ code: 'SESSION_BUSY', run_id: expect.stringMatching(/^run_/) });
    expect(busy.detail).toContain(`session ${sid} is busy`);
    const view = await fetch(`${second.url}/api/v1/agent/session/${sid}`, { headers: as('alice') });
    expect((await json(view)).message_count).toBe(4);
  });
});
