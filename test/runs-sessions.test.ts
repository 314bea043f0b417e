import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, readStreamUntil, startApp, type TestApp } from './support/app.js';

let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({
    OPENAI_BASE_URL: fake.url,
    ENABLE_PERSISTENCE: 'true',
    DATABASE_URL: 'sqlite::memory:',
    SESSION_QUEUE_MAX_WAITING: '2',
    SESSION_QUEUE_TIMEOUT_SECONDS: '5',
  });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => fake.reset());

const completion = (body: Record<string, unknown>, init: RequestInit = {}) =>
  fetch(`${t.url}/api/v1/agent/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });

async function newSession(): Promise<string> {
  fake.script({ kind: 'text', content: 'first answer' });
  const answer = await (await post(`${t.url}/api/v1/agent/completion`, { message: 'start' })).json();
  return answer.session_id;
}

async function storedMessages(sessionId: string): Promise<Array<{ role: string; content: string }>> {
  const page = await (await fetch(`${t.url}/api/v1/agent/session/${sessionId}/messages?after=0&limit=200`)).json();
  return page.messages;
}

async function frames(response: Response, count: number, controller: AbortController) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const text = await readStreamUntil(reader, (seen) => (seen.match(/\n\n/g) ?? []).length >= count, decoder);
  controller.abort(); // the client goes away mid-answer
  return text
    .split('\n\n')
    .slice(0, count)
    .map((frame) => ({ id: /^id: (.+)$/m.exec(frame)![1]!, event: JSON.parse(/^data: (.+)$/m.exec(frame)![1]!) }));
}

describe('a dropped stream does not lose the run', () => {
  it('resumes with Last-Event-ID: both parts join to the full answer, with no seq missing or repeated', async () => {
    const sessionId = await newSession();
    const words = Array.from({ length: 40 }, (_, i) => `word${i} `);
    fake.script({ kind: 'text', content: words.join(''), chunks: words, delayMs: 10 });
    const controller = new AbortController();
    const response = await completion({ message: 'tell me more', session_id: sessionId, stream: true }, { signal: controller.signal });
    const runId = response.headers.get('x-run-id')!;
    const before = await frames(response, 5, controller);
    const after = await readSse(await fetch(`${t.url}/api/v1/agent/runs/${runId}/stream`, { headers: { 'Last-Event-ID': before.at(-1)!.id } }));
    const afterIds = [...after.raw.matchAll(/^id: (.+)$/gm)].map((match) => match[1]);
    const ids = [...before.map((frame) => frame.id), ...afterIds];
    expect(ids).toEqual(ids.map((_, index) => `${runId}:${index + 1}`));
    const events = [...before.map((frame) => frame.event), ...after.events];
    expect(events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe(words.join(''));
    expect(events.at(-1)).toMatchObject({ type: 'done', run_id: runId, session_id: sessionId });
    // The run went on without its client and saved its turn.
    const stored = await storedMessages(sessionId);
    expect(stored.at(-1)).toMatchObject({ role: 'assistant', content: words.join('') });
    expect(fake.requests.every((request) => !request.closedEarly)).toBe(true);
  });
});

describe('two runs on one session', () => {
  it('rejects the second with 409 naming the running run, whose stream it can join', async () => {
    const sessionId = await newSession();
    fake.script({ kind: 'text', content: 'the slow one', chunkSize: 1, delayMs: 20 });
    const first = completion({ message: 'one', session_id: sessionId });
    await fake.waitForRequests(2);
    const second = await completion({ message: 'two', session_id: sessionId, stream: true });
    expect(second.status).toBe(409);
    const busy = await second.json();
    expect(busy.code).toBe('SESSION_BUSY');
    expect(busy.detail).toContain(busy.run_id);
    const joined = await readSse(await fetch(`${t.url}/api/v1/agent/runs/${busy.run_id}/stream`));
    expect(joined.events.at(-1)).toMatchObject({ type: 'done', run_id: busy.run_id });
    const answer = await (await first).json();
    expect(answer.run_id).toBe(busy.run_id);
    expect(joined.events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe(answer.content);
  });

  it('with on_busy "enqueue" runs both, one after the other, in order', async () => {
    const sessionId = await newSession();
    fake.script({ kind: 'text', content: 'answer one', chunkSize: 1, delayMs: 15 }, { kind: 'text', content: 'answer two' });
    const first = completion({ message: 'one', session_id: sessionId });
    await fake.waitForRequests(2);
    const second = completion({ message: 'two', session_id: sessionId, on_busy: 'enqueue' });
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const stored = await storedMessages(sessionId);
    expect(stored.slice(2).map((m) => `${m.role}:${m.content}`)).toEqual(['user:one', 'assistant:answer one', 'user:two', 'assistant:answer two']);
    // The queued run saw the first run's turn in its history.
    expect(fake.requests[2]!.body.messages.map((m: any) => m.content)).toContain('answer one');
  });

  it('bounds the queue: past SESSION_QUEUE_MAX_WAITING the run gets 409 at once', async () => {
    const sessionId = await newSession();
    fake.script({ kind: 'text', content: 'hold the session for a while', chunkSize: 1, delayMs: 20 });
    fake.setDefault({ kind: 'text', content: 'queued answer' });
    const holder = completion({ message: 'hold', session_id: sessionId });
    await fake.waitForRequests(2);
    const queued = [1, 2].map((n) => completion({ message: `q${n}`, session_id: sessionId, on_busy: 'enqueue' }));
    await new Promise((resolve) => setTimeout(resolve, 50)); // let both take their places in the queue
    const overflow = await completion({ message: 'q3', session_id: sessionId, on_busy: 'enqueue' });
    expect(overflow.status).toBe(409);
    expect((await overflow.json()).detail).toMatch(/queue is full/);
    for (const response of await Promise.all([holder, ...queued])) expect(response.status).toBe(200);
  });
});

describe('the enqueue wait is bounded', () => {
  it('answers 409 naming the running run once SESSION_QUEUE_TIMEOUT_SECONDS has passed', async () => {
    const impatient = await startApp({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:', SESSION_QUEUE_TIMEOUT_SECONDS: '0.3' });
    try {
      fake.script({ kind: 'text', content: 'first' }, { kind: 'text', content: 'x'.repeat(60), chunkSize: 1, delayMs: 20 });
      const { session_id } = await (await post(`${impatient.url}/api/v1/agent/completion`, { message: 'start' })).json();
      const holder = post(`${impatient.url}/api/v1/agent/completion`, { message: 'hold', session_id });
      await fake.waitForRequests(2);
      const started = Date.now();
      const waited = await post(`${impatient.url}/api/v1/agent/completion`, { message: 'wait', session_id, on_busy: 'enqueue' });
      expect(waited.status).toBe(409);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const busy = await waited.json();
      expect(busy).toMatchObject({ code: 'SESSION_BUSY', run_id: expect.stringMatching(/^run_/) });
      expect((await holder).status).toBe(200);
    } finally {
      await impatient.close();
    }
  });
});
