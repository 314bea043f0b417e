import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newSessionId } from '../src/sessions/index.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sendJson, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

describe('server-side mode', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp(sessionEnv(fake.url));
  });
  afterAll(() => app.close());
  const completion = (body: unknown, headers?: Record<string, string>) => post(`${app.url}/api/v1/agent/completion`, body, headers);

  it('creates a session on a first message and continues it, sending the model the stored history', async () => {
    fake.script({ kind: 'text', content: 'Hi Ann' }, { kind: 'text', content: 'You are Ann' });
    const first = await completion({ message: 'I am Ann', system_prompt: 'Be brief', metadata: { topic: 'names' } });
    expect(first.status).toBe(200);
    const created = await json(first);
    expect(created).toMatchObject({ role: 'assistant', content: 'Hi Ann' });
    expect(created.session_id).toMatch(SESSION_ID);
    expect(first.headers.get('x-session-id')).toBe(created.session_id);

    const second = await completion({ message: 'Who am I?', session_id: created.session_id });
    expect(second.status).toBe(200);
    expect(await json(second)).toMatchObject({ content: 'You are Ann', session_id: created.session_id });
    expect(fake.requests[1]?.body.messages).toEqual([
      { role: 'system', content: 'Be brief' },
      { role: 'user', content: 'I am Ann' },
      { role: 'assistant', content: 'Hi Ann' },
      { role: 'user', content: 'Who am I?' },
    ]);

    const view = await fetch(`${app.url}/api/v1/agent/session/${created.session_id}`);
    expect(view.status).toBe(200);
    const session = await json(view);
    expect(session).toEqual({
      session_id: created.session_id,
      message_count: 4,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      model: null,
      metadata: { topic: 'names' },
    });
    expect(Date.parse(session.updated_at)).toBeGreaterThanOrEqual(Date.parse(session.created_at));
  });

  it('keeps system_prompt, model and metadata on the session, and lets a later turn replace them', async () => {
    const first = await json(await completion({ message: 'one', system_prompt: 'old prompt', model: 'model-a', metadata: { v: 1 } }));
    const sid = first.session_id;
    await completion({ message: 'two', session_id: sid });
    expect(fake.requests[1]?.body.model).toBe('model-a');
    expect(fake.requests[1]?.body.messages[0]).toEqual({ role: 'system', content: 'old prompt' });

    await completion({ message: 'three', session_id: sid, system_prompt: 'new prompt', model: 'model-b', metadata: { v: 2 } });
    expect(fake.requests[2]?.body.model).toBe('model-b');
    expect(fake.requests[2]?.body.messages[0]).toEqual({ role: 'system', content: 'new prompt' });
    await completion({ message: 'four', session_id: sid });
    expect(fake.requests[3]?.body.model).toBe('model-b');
    expect(fake.requests[3]?.body.messages[0]).toEqual({ role: 'system', content: 'new prompt' });
    expect(await json(await fetch(`${app.url}/api/v1/agent/session/${sid}`))).toMatchObject({ model: 'model-b', metadata: { v: 2 }, message_count: 8 });
  });

  it('answers 404 for an unknown session_id, and 400 for a session_id without a message', async () => {
    for (const sid of [newSessionId(), 'not-a-real-id', '../../etc/passwd']) {
      const response = await completion({ message: 'hello?', session_id: sid });
      expect(response.status).toBe(404);
      expect(await json(response)).toEqual({ detail: `Session ${sid} not found`, code: 'NOT_FOUND' });
    }
    const missing = await completion({ session_id: newSessionId() });
    expect(missing.status).toBe(400);
    expect((await json(missing)).detail).toMatch(/"message" is required/);
    expect(fake.requests).toHaveLength(0);
    for (const path of [`session/${newSessionId()}`, `session/${newSessionId()}/messages`]) {
      const response = await fetch(`${app.url}/api/v1/agent/${path}`);
      expect(response.status).toBe(404);
      expect((await json(response)).detail).toMatch(/^Session .* not found$/);
    }
  });

  it('stores exactly what it streamed and what a JSON turn answers, for any chunking (#84)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }), async (chunks) => {
        const content = chunks.join('');
        fake.reset();
        fake.script({ kind: 'text', content, chunks }, { kind: 'text', content, chunks });
        const answered = await json(await completion({ message: 'say it' }));
        const streamed = await readSse(await completion({ message: 'say it again', session_id: answered.session_id, stream: true }));
        const deltas = streamed.events.filter((e) => e.type === 'content').map((e) => e.content).join('');
        const page = await json(await fetch(`${app.url}/api/v1/agent/session/${answered.session_id}/messages`));
        const stored = page.messages.filter((m: any) => m.role === 'assistant').map((m: any) => m.content);
        expect(answered.content).toBe(content);
        expect(deltas).toBe(content);
        expect(stored).toEqual([content, content]);
      }),
      { numRuns: 15 },
    );
  });

  it('stores a tool-using turn whole and gives the next turn the tool call with its result', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }] },
      { kind: 'text', content: 'It is 4' },
      { kind: 'text', content: 'Still 4' },
    );
    const sid = (await json(await completion({ message: '2+2?' }))).session_id;
    const page = await json(await fetch(`${app.url}/api/v1/agent/session/${sid}/messages`));
    expect(page.message_count).toBe(4);
    expect(page.messages.map((m: any) => [m.seq, m.role])).toEqual([
      [1, 'user'],
      [2, 'assistant'],
      [3, 'tool'],
      [4, 'assistant'],
    ]);
    const call = page.messages[1].tool_calls[0];
    expect(call).toMatchObject({ type: 'function', function: { name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' } });
    expect(page.messages[2]).toMatchObject({ tool_call_id: call.id, content: '4' });

    await completion({ message: 'and again?', session_id: sid });
    const sent = fake.requests[2]?.body.messages;
    expect(sent.map((m: any) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user']);
    expect(sent[1].tool_calls[0].id).toBe(sent[2].tool_call_id);
  });

  it('pages messages with limit, before and after, within the limits', async () => {
    const sid = (await json(await completion({ message: 'm1' }))).session_id;
    for (let i = 2; i <= 5; i++) await completion({ message: `m${i}`, session_id: sid });
    const read = async (query: string) => {
      const response = await fetch(`${app.url}/api/v1/agent/session/${sid}/messages${query}`);
      return { status: response.status, body: await json(response) };
    };
    const latest = await read('?limit=3');
    expect(latest.body.messages.map((m: any) => m.seq)).toEqual([8, 9, 10]);
    expect(latest.body.has_more).toBe(true);
    expect((await read('?limit=3&before=8')).body.messages.map((m: any) => m.seq)).toEqual([5, 6, 7]);
    const first = await read('?after=0&limit=2');
    expect(first.body.messages.map((m: any) => [m.seq, m.content])).toEqual([
      [1, 'm1'],
      [2, 'Hello from fake'],
    ]);
    expect((await read('?after=9')).body).toMatchObject({ has_more: false, messages: [{ seq: 10 }] });
    expect((await read('?limit=200')).status).toBe(200);
    for (const bad of ['?limit=0', '?limit=201', '?limit=abc', '?before=-1', '?after=1.5', '?page=2']) {
      const response = await read(bad);
      expect(response.status, bad).toBe(400);
      expect(typeof response.body.detail).toBe('string');
    }
    expect((await read('?limit=201')).body.detail).toBe('limit must be between 1 and 200');
  });

  it('needs authentication to list sessions or change access, since sessions made without it have no owner', async () => {
    const sid = (await json(await completion({ message: 'open' }))).session_id;
    const list = await fetch(`${app.url}/api/v1/agent/sessions`, { headers: { 'x-user-id': 'ann' } });
    expect(list.status).toBe(400);
    expect(await json(list)).toMatchObject({ code: 'AUTH_REQUIRED', detail: expect.stringMatching(/CHASSIS_API_KEY or ENABLE_USER_AUTH/) });
    const patch = await sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', { 'x-user-id': 'ann' }, { is_public: true });
    expect(patch.status).toBe(400);
    // An ownerless session is open: anyone holding its id may read, continue and delete it.
    expect((await fetch(`${app.url}/api/v1/agent/session/${sid}`, { headers: { 'x-user-id': 'bob' } })).status).toBe(200);
    const removed = await sendJson(`${app.url}/api/v1/agent/session/${sid}`, 'DELETE', { 'x-user-id': 'bob' });
    expect(await json(removed)).toEqual({ status: 'deleted', session_id: sid });
  });

  it('makes two parallel first messages two separate sessions (#90)', async () => {
    const [a, b] = await Promise.all([completion({ message: 'first a' }), completion({ message: 'first b' })]);
    const [ida, idb] = [(await json(a)).session_id, (await json(b)).session_id];
    expect(ida).toMatch(SESSION_ID);
    expect(idb).toMatch(SESSION_ID);
    expect(ida).not.toBe(idb);
  });

  it('issues 128-bit random session ids (#55)', () => {
    const ids = Array.from({ length: 1000 }, newSessionId);
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(id).toMatch(SESSION_ID);
    expect(Buffer.from(ids[0]!, 'base64url')).toHaveLength(16);
  });
});

describe('the history sent to the model is capped at SESSION_MAX_MESSAGES, the stored one is not', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp(sessionEnv(fake.url, { SESSION_MAX_MESSAGES: '4' }));
  });
  afterAll(() => app.close());

  it('sends everything at the cap, and drops the oldest non-system messages past it', async () => {
    fake.setDefault((req) => ({ kind: 'text', content: `a${req.body.messages.length}` }));
    const completion = (body: unknown) => post(`${app.url}/api/v1/agent/completion`, body);
    const sid = (await json(await completion({ message: 'u1', system_prompt: 'sys' }))).session_id;
    await completion({ message: 'u2', session_id: sid });
    // 4 messages: exactly at the cap.
    expect(fake.requests[1]?.body.messages.map((m: any) => m.content)).toEqual(['sys', 'u1', 'a2', 'u2']);
    await completion({ message: 'u3', session_id: sid });
    // 6 would be sent: the two oldest non-system messages go, the system prompt stays.
    expect(fake.requests[2]?.body.messages.map((m: any) => m.content)).toEqual(['sys', 'u2', 'a4', 'u3']);
    expect((await json(await fetch(`${app.url}/api/v1/agent/session/${sid}`))).message_count).toBe(6);
  });

  it('drops a tool call together with its results rather than sending a result alone', async () => {
    const toolTurn = () =>
      fake.script({ kind: 'tool_calls', calls: [{ name: 'get_server_time', arguments: '{}' }] }, { kind: 'text', content: 'noon' }, { kind: 'text', content: 'ok' });
    const completion = (body: unknown) => post(`${app.url}/api/v1/agent/completion`, body);

    // Stored: user, assistant(tool_calls), tool, assistant. Next context: those + the new user
    // message = 5; the cut drops the oldest user message and keeps the pair whole.
    toolTurn();
    const first = (await json(await completion({ message: 'time?' }))).session_id;
    await completion({ message: 'thanks', session_id: first });
    expect(fake.requests[2]?.body.messages.map((m: any) => m.role)).toEqual(['assistant', 'tool', 'assistant', 'user']);

    // With a system prompt only 3 others fit, which would start at the tool result: the call and
    // its result go together.
    fake.reset();
    toolTurn();
    const second = (await json(await completion({ message: 'time?' }))).session_id;
    await completion({ message: 'thanks', session_id: second, system_prompt: 'sys' });
    expect(fake.requests[2]?.body.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'assistant', content: 'noon' },
      { role: 'user', content: 'thanks' },
    ]);
  });
});

describe('with ENABLE_PERSISTENCE=false', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({ ...sessionEnv(fake.url), ENABLE_PERSISTENCE: 'false' });
  });
  afterAll(() => app.close());

  it('answers server-side mode and the session routes with 400 saying how to enable it', async () => {
    for (const body of [{ message: 'hi' }, { message: 'hi', session_id: newSessionId() }]) {
      const response = await post(`${app.url}/api/v1/agent/completion`, body);
      expect(response.status).toBe(400);
      expect((await json(response)).detail).toMatch(/ENABLE_PERSISTENCE=true/);
    }
    for (const path of [`session/${newSessionId()}`, `session/${newSessionId()}/messages`, 'sessions']) {
      const response = await fetch(`${app.url}/api/v1/agent/${path}`);
      expect(response.status).toBe(400);
      expect((await json(response)).detail).toMatch(/ENABLE_PERSISTENCE=true/);
    }
    expect(fake.requests).toHaveLength(0);
    // Client-side mode is unaffected.
    expect((await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
  });
});

describe('durability', () => {
  it('continues a session after a restart on the same SQLite file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sessions-restart-'));
    const env = sessionEnv(fake.url, { DATABASE_URL: `sqlite:${join(dir, 'chassis.db')}`, CHASSIS_API_KEY: 'k' });
    const headers = { 'x-api-key': 'k', 'x-user-id': 'ann' };
    try {
      const before = await startApp(env);
      fake.script({ kind: 'text', content: 'noted' });
      const sid = (await json(await post(`${before.url}/api/v1/agent/completion`, { message: 'remember 42', system_prompt: 'sys' }, headers))).session_id;
      await before.close();

      const after = await startApp(env);
      fake.script({ kind: 'text', content: '42' });
      const response = await post(`${after.url}/api/v1/agent/completion`, { message: 'what number?', session_id: sid }, headers);
      expect(response.status).toBe(200);
      expect(fake.requests[1]?.body.messages).toEqual([
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'remember 42' },
        { role: 'assistant', content: 'noted' },
        { role: 'user', content: 'what number?' },
      ]);
      const list = await json(await fetch(`${after.url}/api/v1/agent/sessions`, { headers }));
      expect(list.sessions.map((s: any) => [s.session_id, s.message_count])).toEqual([[sid, 4]]);
      await after.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('listing your sessions', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: 'k' }));
  });
  afterAll(() => app.close());

  it('lists only your own, most recently updated first, page by page', async () => {
    const as = (userId: string) => ({ 'x-api-key': 'k', 'x-user-id': userId });
    const completion = (body: unknown, userId: string) => post(`${app.url}/api/v1/agent/completion`, body, as(userId));
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push((await json(await completion({ message: `s${i}` }, 'ann'))).session_id);
    await completion({ message: 'not yours' }, 'bob');
    await completion({ message: 'bump', session_id: mine[1] }, 'ann');

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`;
      const page: any = await json(await fetch(`${app.url}/api/v1/agent/sessions${query}`, { headers: as('ann') }));
      expect(page.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...page.sessions.map((s: any) => s.session_id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([mine[1], mine[4], mine[3], mine[2], mine[0]]);

    for (const bad of ['?cursor=garbage', '?limit=0', '?limit=101']) {
      const response = await fetch(`${app.url}/api/v1/agent/sessions${bad}`, { headers: as('ann') });
      expect(response.status, bad).toBe(400);
    }
    expect((await fetch(`${app.url}/api/v1/agent/sessions?limit=100`, { headers: as('ann') })).status).toBe(200);
  });
});
