// The in-process window of recent session histories (SESSION_HISTORY_MEMORY_MB, issue #13): a turn
// reads its history from memory when the stored version says it is current, and from the database
// whenever another instance (or anything else) appended in between.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { RecentHistory } from '../src/sessions/index.js';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
let dir: string;
const apps: TestApp[] = [];

beforeAll(async () => {
  fake = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'history-window-'));
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
afterAll(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function instance(file: string, extra: Record<string, string> = {}): Promise<TestApp> {
  const app = await startApp(sessionEnv(fake.url, { DATABASE_URL: `sqlite:${join(dir, file)}`, ...extra }));
  apps.push(app);
  return app;
}

async function turn(app: TestApp, message: string, sessionId?: string): Promise<string> {
  const response = await post(`${app.url}/api/v1/agent/completion`, sessionId === undefined ? { message } : { message, session_id: sessionId });
  expect(response.status).toBe(200);
  return (await json(response)).session_id;
}

const sentContents = () => (fake.requests.at(-1)!.body.messages as { content: string }[]).map((message) => message.content);

describe('continuing a session with the history window on', () => {
  it('sends the whole history when two instances on one database take turns (each sees the other\'s appends)', async () => {
    const first = await instance('shared.db');
    const second = await instance('shared.db');
    fake.reset();
    fake.script(...['a1', 'a2', 'a3', 'a4', 'a5'].map((content) => ({ kind: 'text' as const, content })));
    const sid = await turn(first, 'u1');
    await turn(second, 'u2', sid);
    await turn(first, 'u3', sid);
    expect(sentContents()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    await turn(first, 'u4', sid);
    expect(sentContents()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3', 'u4']);
    await turn(second, 'u5', sid);
    expect(sentContents()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3', 'u4', 'a4', 'u5']);
  });

  it('serves a current history from memory, and reads the store when SESSION_HISTORY_MEMORY_MB=0', async () => {
    for (const [megabytes, expected] of [
      ['64', 'a1'],
      ['0', 'rewritten in the store'],
    ] as const) {
      const file = `window-${megabytes}.db`;
      const app = await instance(file, { SESSION_HISTORY_MEMORY_MB: megabytes });
      fake.reset();
      fake.script({ kind: 'text', content: 'a1' }, { kind: 'text', content: 'a2' });
      const sid = await turn(app, 'u1');
      // Rewrite a stored message behind the server's back, leaving the version (next_seq) alone:
      // only a server that did not read the store this turn still sends the original.
      const db = new SQLite(join(dir, file));
      db.prepare('update session_messages set message = ? where session_id = ? and seq = 2').run(
        JSON.stringify({ role: 'assistant', content: 'rewritten in the store' }),
        sid,
      );
      db.close();
      await turn(app, 'u2', sid);
      expect(sentContents()).toEqual(['u1', expected, 'u2']);
    }
  });

  it('keeps at most SESSION_MAX_MESSAGES of the history (the same trim as the store\'s tail)', async () => {
    const app = await instance('trim.db', { SESSION_MAX_MESSAGES: '4' });
    fake.reset();
    fake.script(...['a1', 'a2', 'a3'].map((content) => ({ kind: 'text' as const, content })));
    const sid = await turn(app, 'u1');
    await turn(app, 'u2', sid);
    await turn(app, 'u3', sid);
    expect(sentContents()).toEqual(['a1', 'u2', 'a2', 'u3']);
  });

  it('sends each turn exactly its window while the window slides, whatever the previous body held', async () => {
    // 20 messages: past the size from which a body reuses the previous body's bytes (body-bytes.ts).
    const app = await instance('slide.db', { SESSION_MAX_MESSAGES: '20' });
    fake.reset();
    const answers = Array.from({ length: 16 }, (_, index) => (index % 3 === 1 ? `réponse ${index} ✓` : `a${index}`));
    fake.script(...answers.map((content) => ({ kind: 'text' as const, content })));
    const all: string[] = [];
    let sid: string | undefined;
    let prompt: string | undefined;
    for (let index = 0; index < answers.length; index++) {
      const question = index % 4 === 2 ? `question ${index} — ü` : `u${index}`;
      // The owner sets (and later changes) the session's system prompt: it comes first, and the history behind it is cut to fit.
      const system = index % 5 === 3 ? `prompt ${index}` : undefined;
      prompt = system ?? prompt;
      const response = await post(`${app.url}/api/v1/agent/completion`, { message: question, ...(sid === undefined ? {} : { session_id: sid }), ...(system === undefined ? {} : { system_prompt: system }) });
      expect(response.status).toBe(200);
      sid = (await json(response)).session_id;
      all.push(question);
      const window = all.slice(-(prompt === undefined ? 20 : 19));
      expect(sentContents()).toEqual(prompt === undefined ? window : [prompt, ...window]);
      all.push(answers[index]!);
    }
  });
});

describe('RecentHistory bounds', () => {
  const message = (characters: number) => ({ role: 'user' as const, content: 'x'.repeat(characters) });
  // approximateBytes: 2 bytes a character + 200 per message.
  const bytesOf = (characters: number) => 2 * characters + 200;

  it('answers only for the version it was filled with', () => {
    const recent = new RecentHistory(1_000_000);
    recent.set('s', 3, [message(1)]);
    expect(recent.get('s', 3)).toEqual([message(1)]);
    expect(recent.get('s', 5)).toBeUndefined();
    // A wrong version drops the entry: it can never become right again.
    expect(recent.get('s', 3)).toBeUndefined();
  });

  it('holds sessions up to the byte budget and evicts the least recently used past it', () => {
    const budget = 4 * bytesOf(100);
    const recent = new RecentHistory(budget);
    for (const id of ['a', 'b', 'c', 'd']) recent.set(id, 1, [message(100)]);
    expect(recent.size).toEqual({ sessions: 4, bytes: budget });
    recent.get('a', 1);
    recent.set('e', 1, [message(100)]);
    expect(recent.size).toEqual({ sessions: 4, bytes: budget });
    expect(recent.get('b', 1)).toBeUndefined();
    expect(recent.get('a', 1)).toBeDefined();
  });

  it('keeps one session of a quarter of the budget, and not one a byte larger', () => {
    const recent = new RecentHistory(4 * bytesOf(100));
    recent.set('quarter', 1, [message(100)]);
    expect(recent.get('quarter', 1)).toBeDefined();
    recent.set('larger', 1, [message(101)]);
    expect(recent.get('larger', 1)).toBeUndefined();
    expect(recent.size.sessions).toBe(1);
  });

  it('sizes an advanced tail as a fresh one: what came in counted, what fell out of the window not', () => {
    const incremental = new RecentHistory(1_000_000);
    const fresh = new RecentHistory(1_000_000);
    incremental.set('s', 4, [message(10), message(20), message(30)]);
    for (const [version, added] of [[6, [message(40), message(50)]], [8, [message(5), message(7)]], [9, [message(1000)]]] as const) {
      const from = incremental.get('s', version - added.length)!;
      const tail = [...from, ...added].slice(-3);
      incremental.advance('s', from, version, added, tail);
      fresh.set('s', version, tail);
      expect(incremental.size).toEqual(fresh.size);
    }
    expect(incremental.get('s', 9)).toEqual([message(5), message(7), message(1000)]);
    // A tail that is not the entry (another instance wrote in between): sized in full.
    incremental.advance('s', [message(1)], 11, [message(2)], [message(1), message(2)]);
    expect(incremental.size.bytes).toBe(bytesOf(1) + bytesOf(2));
  });

  it('SESSION_HISTORY_MEMORY_MB is validated at start', () => {
    expect(loadConfig({ SESSION_HISTORY_MEMORY_MB: '0' }).sessionHistoryMemoryMb).toBe(0);
    expect(() => loadConfig({ SESSION_HISTORY_MEMORY_MB: '-1' })).toThrow(/SESSION_HISTORY_MEMORY_MB/);
    expect(() => loadConfig({ SESSION_HISTORY_MEMORY_MB: 'lots' })).toThrow(/SESSION_HISTORY_MEMORY_MB/);
  });
});
