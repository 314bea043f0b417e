import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sessionEnv } from './support/sessions.js';
import { freePort } from './support/server-process.js';
import { createPgSchema, storesAvailable } from './support/stores.js';

const stores = await storesAvailable();
let fake: FakeUpstream;
const dir = mkdtempSync(join(tmpdir(), 'sessions-concurrency-'));
let files = 0;
const sqliteFile = () => join(dir, `db-${files++}.db`);

beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

const completion = (app: TestApp, body: unknown) => post(`${app.url}/api/v1/agent/completion`, body);
const messages = async (app: TestApp, sid: string) => (await json(await fetch(`${app.url}/api/v1/agent/session/${sid}/messages?after=0&limit=200`))).messages;

describe.each([
  { name: 'SQLite', available: true },
  { name: 'PostgreSQL', available: stores.pg },
])('20 concurrent turns at one session on $name (#86)', ({ name, available }) => {
  it.skipIf(!available)('answers each with 200 or 409 SESSION_BUSY, and stores exactly the successful turns, whole and in order', async () => {
    const schema = name === 'PostgreSQL' ? await createPgSchema() : undefined;
    const app = await startApp(sessionEnv(fake.url, { DATABASE_URL: schema?.url ?? `sqlite:${sqliteFile()}` }));
    try {
      const sid = (await json(await completion(app, { message: 'start' }))).session_id;
      fake.setDefault((req) => ({ kind: 'text', content: `answer to ${req.body.messages[req.body.messages.length - 1].content}`, delayMs: 20 }));
      const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => completion(app, { message: `turn ${i}`, session_id: sid })));
      const bodies = await Promise.all(responses.map((response) => json(response)));
      const statuses = responses.map((response) => response.status);
      expect(statuses.every((status) => status === 200 || status === 409), statuses.join(',')).toBe(true);
      const succeeded = bodies.flatMap((body, i) => (statuses[i] === 200 ? [`turn ${i}`] : []));
      expect(succeeded.length).toBeGreaterThanOrEqual(1);
      for (const [i, body] of bodies.entries()) {
        if (statuses[i] === 409) {
          expect(body).toMatchObject({ code: 'SESSION_BUSY', run_id: expect.stringMatching(/^run_/) });
          expect(body.detail).toMatch(new RegExp(`^session ${sid} is busy \\(run ${body.run_id} is running`));
        }
      }

      const stored = await messages(app, sid);
      expect(stored).toHaveLength(2 + 2 * succeeded.length);
      expect(stored.map((m: any) => m.seq)).toEqual(stored.map((_: unknown, i: number) => i + 1));
      const turns = stored.slice(2);
      // Each stored turn is a user message followed by the answer to it: nothing interleaved.
      for (let i = 0; i < turns.length; i += 2) {
        expect(turns[i].role).toBe('user');
        expect(turns[i + 1]).toMatchObject({ role: 'assistant', content: `answer to ${turns[i].content}` });
      }
      expect(turns.filter((m: any) => m.role === 'user').map((m: any) => m.content).sort()).toEqual(succeeded.sort());
    } finally {
      await app.close();
      await schema?.drop();
    }
  });
});

describe('session leases', () => {
  it('renews the lease while a run lasts longer than it, so a second run still gets 409', async () => {
    const app = await startApp(sessionEnv(fake.url, { SESSION_LEASE_SECONDS: '0.2' }));
    try {
      const sid = (await json(await completion(app, { message: 'start' }))).session_id;
      // About 0.8 s of streaming: four lease lengths.
      fake.script({ kind: 'text', content: 'a slow streamed answer', chunkSize: 1, delayMs: 35 });
      const running = completion(app, { message: 'long run', session_id: sid, stream: true });
      await fake.waitForRequests(2);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const second = await completion(app, { message: 'meanwhile', session_id: sid });
      expect(second.status).toBe(409);
      expect(await (await running).text()).toContain('"type":"done"');
      expect((await messages(app, sid)).map((m: any) => m.content)).toEqual(['start', 'Hello from fake', 'long run', 'a slow streamed answer']);
    } finally {
      await app.close();
    }
  });

  it('frees a session whose holder died once the lease runs out (#88)', async () => {
    const file = sqliteFile();
    const app = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${file}` }));
    const peek = new SQLite(file);
    try {
      const sid = (await json(await completion(app, { message: 'start' }))).session_id;
      // Another instance took the session and vanished without a word.
      const until = Date.now() + 400;
      peek.prepare('update sessions set lease_owner = ?, lease_until = ? where id = ?').run('crashed-instance', until, sid);
      expect((await completion(app, { message: 'blocked', session_id: sid })).status).toBe(409);
      await new Promise((resolve) => setTimeout(resolve, until - Date.now() + 20));
      const freed = await completion(app, { message: 'free again', session_id: sid });
      expect(freed.status).toBe(200);
      expect((await messages(app, sid)).map((m: any) => m.content)).toEqual(['start', 'Hello from fake', 'free again', 'Hello from fake']);
    } finally {
      peek.close();
      await app.close();
    }
  });

  it('refuses to commit a run that lost its lease, whatever the timing: the database decides (#87)', async () => {
    const file = sqliteFile();
    const app = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${file}` }));
    const peek = new SQLite(file);
    try {
      const sid = (await json(await completion(app, { message: 'start' }))).session_id;
      fake.script({ kind: 'text', content: 'late answer', delayMs: 50 });
      const running = completion(app, { message: 'will lose its lease', session_id: sid });
      await fake.waitForRequests(2);
      // E.g. this instance stalled past its lease and another run took the session.
      peek.prepare('update sessions set lease_owner = ?, lease_until = ? where id = ?').run('other-run', Date.now() + 60_000, sid);
      const response = await running;
      expect(response.status).toBe(409);
      expect(await json(response)).toMatchObject({ code: 'SESSION_BUSY', detail: expect.stringMatching(/lost its hold on it and the turn was not saved/) });
      expect(peek.prepare('select message_count, lease_owner from sessions where id = ?').get(sid)).toEqual({ message_count: 2, lease_owner: 'other-run' });
      expect(peek.prepare('select count(*) as n from session_messages where session_id = ?').get(sid)).toEqual({ n: 2 });
    } finally {
      peek.close();
      await app.close();
    }
  });
});

describe.skipIf(!stores.pg)('two instances on one PostgreSQL whose Redis is down (#87)', () => {
  it('still lets only one run at a time through: the lease lives in the database', async () => {
    const schema = await createPgSchema();
    const env = sessionEnv(fake.url, { DATABASE_URL: schema.url, REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const first = await startApp(env);
    const second = await startApp(env);
    try {
      const sid = (await json(await completion(first, { message: 'start' }))).session_id;
      fake.setDefault({ kind: 'text', content: 'slow', delayMs: 50 });
      const responses = await Promise.all([completion(first, { message: 'a', session_id: sid }), completion(second, { message: 'b', session_id: sid })]);
      expect(responses.map((response) => response.status).sort()).toEqual([200, 409]);
      expect(await messages(second, sid)).toHaveLength(4);
    } finally {
      await first.close();
      await second.close();
      await schema.drop();
    }
  });
});

describe('SQLite under concurrent writers (#94)', () => {
  it('creates 50 sessions in parallel, all 2xx, in WAL mode', async () => {
    const file = sqliteFile();
    const app = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${file}` }));
    try {
      const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => completion(app, { message: `parallel ${i}` })));
      expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
      const ids = new Set(await Promise.all(responses.map(async (response) => (await json(response)).session_id)));
      expect(ids.size).toBe(50);
      const peek = new SQLite(file, { readonly: true });
      expect(peek.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(peek.prepare('select count(*) as n from sessions').get()).toEqual({ n: 50 });
      peek.close();
    } finally {
      await app.close();
    }
  });

  it('shares one SQLite file between two instances without SQLITE_BUSY errors', async () => {
    const file = sqliteFile();
    const first = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${file}` }));
    const second = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${file}` }));
    try {
      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => completion(i % 2 === 0 ? first : second, { message: `writer ${i}` })));
      expect(responses.map((response) => response.status)).toEqual(Array(40).fill(200));
    } finally {
      await first.close();
      await second.close();
    }
  });
});
