import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeStep, type FakeUpstream } from './support/fake-upstream.js';
import { historyProblem, json, sendJson, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
let app: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  app = await startApp(sessionEnv(fake.url, { UPSTREAM_IDLE_TIMEOUT_SECONDS: '1' }));
});
afterAll(async () => {
  await app.close();
  await fake.close();
});

/** After the scripted steps, a strict upstream that refuses any history breaking the tool-call pairing. */
beforeEach(() => {
  fake.reset();
  fake.setDefault((req) => {
    const problem = historyProblem(req.body.messages);
    return problem === null
      ? { kind: 'text', content: 'valid history' }
      : { kind: 'status', status: 400, body: { error: { message: `invalid history: ${problem}`, type: 'invalid_request_error' } } };
  });
});

const completion = (body: Record<string, unknown>) => post(`${app.url}/api/v1/agent/completion`, body);
const messageCount = async (sid: string): Promise<number> => (await json(await fetch(`${app.url}/api/v1/agent/session/${sid}`))).message_count;

async function sessionWithOneTurn(): Promise<string> {
  const response = await completion({ message: 'first' });
  expect(response.status).toBe(200);
  return (await json(response)).session_id;
}

const toolCall: FakeStep = { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"multiply","a":6,"b":7}' }] };

describe('a failed turn persists nothing and leaves the session usable (#78)', () => {
  const faults: Array<{ name: string; steps: FakeStep[]; stream: boolean; status?: number }> = [
    { name: 'upstream 500', steps: [{ kind: 'status', status: 500 }], stream: false, status: 502 },
    { name: 'connection dropped before a tool call', steps: [{ kind: 'drop', content: '', afterChunks: 0 }], stream: false, status: 502 },
    { name: 'connection dropped after a tool call ran', steps: [toolCall, { kind: 'drop', content: '', afterChunks: 0 }], stream: false, status: 502 },
    { name: 'upstream silent past the idle timeout', steps: [toolCall, { kind: 'silent' }], stream: false, status: 504 },
    { name: 'stream dropped mid-answer', steps: [{ kind: 'drop', content: 'half an answ', afterChunks: 2 }], stream: true },
    { name: 'stream dropped after a tool call ran', steps: [toolCall, { kind: 'drop', content: 'The answer is', afterChunks: 1 }], stream: true },
  ];

  it.each(faults)('$name', async ({ steps, stream, status }) => {
    const sid = await sessionWithOneTurn();
    fake.script(...steps);
    const failed = await completion({ message: 'this turn fails', session_id: sid, stream });
    if (stream) {
      const { events } = await readSse(failed);
      const last = events[events.length - 1];
      expect(last.type).toBe('error');
      expect(events.filter((event) => event.type === 'done')).toHaveLength(0);
    } else {
      expect(failed.status).toBe(status);
    }
    expect(await messageCount(sid)).toBe(2);

    const next = await completion({ message: 'next turn', session_id: sid });
    expect(next.status).toBe(200);
    expect((await json(next)).content).toBe('valid history');
    expect(fake.requests[fake.requests.length - 1]?.body.messages).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'valid history' },
      { role: 'user', content: 'next turn' },
    ]);
    expect(await messageCount(sid)).toBe(4);
  });

  it('a failed first turn creates no session', async () => {
    fake.script({ kind: 'status', status: 500 });
    const failed = await completion({ message: 'hello', stream: true });
    const sid = failed.headers.get('x-session-id');
    expect(sid).toMatch(/^[\w-]{22}$/);
    const { events } = await readSse(failed);
    expect(events.map((event) => event.type)).toEqual(['run_started', 'error']);
    expect((await fetch(`${app.url}/api/v1/agent/session/${sid}`)).status).toBe(404);
  });
});

/** Reads SSE frames until one matches, then leaves: the client disconnects mid-stream. */
async function readUntil(response: Response, controller: AbortController, wanted: (event: any) => boolean): Promise<void> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended before the wanted event');
    buffer += decoder.decode(value, { stream: true });
    const frames = buffer.split('\n\n');
    buffer = frames.pop()!;
    for (const frame of frames) {
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (data !== undefined && wanted(JSON.parse(data))) {
        controller.abort();
        return;
      }
    }
  }
}

async function waitForCount(sid: string, count: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await messageCount(sid)) !== count) {
    if (Date.now() > deadline) throw new Error(`message_count did not reach ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('a client that disconnects does not lose the turn (#81)', () => {
  const slowAnswer: FakeStep = { kind: 'text', content: 'a long and slow answer to keep', chunkSize: 3, delayMs: 30 };

  it('a streaming run on a session finishes and is saved after the client left', async () => {
    const sid = await sessionWithOneTurn();
    const logsBefore = app.logs.length;
    fake.script(toolCall, slowAnswer);
    const controller = new AbortController();
    const response = await fetch(`${app.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'stream please', session_id: sid, stream: true }),
      signal: controller.signal,
    });
    await readUntil(response, controller, (event) => event.type === 'content');
    await waitForCount(sid, 6);
    const page = await json(await fetch(`${app.url}/api/v1/agent/session/${sid}/messages?after=2`));
    expect(page.messages.map((m: any) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(page.messages[3].content).toBe('a long and slow answer to keep');
    expect(fake.requests.every((request) => !request.closedEarly)).toBe(true);
    const logs = app.logs.slice(logsBefore);
    expect(JSON.stringify(logs)).not.toMatch(/ERR_STREAM_WRITE_AFTER_END|write after end/);
    expect(logs.filter((line) => line.level >= 50)).toEqual([]);
  });

  it('a new session streamed to a client that left is found through X-Session-Id', async () => {
    fake.script(slowAnswer);
    const controller = new AbortController();
    const response = await fetch(`${app.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'new and streamed', stream: true }),
      signal: controller.signal,
    });
    const sid = response.headers.get('x-session-id')!;
    await readUntil(response, controller, (event) => event.type === 'content');
    // The session exists once its first turn commits (404 until then).
    await waitForCount(sid, 2);
  });

  it('a JSON run on a session is saved after the client left', async () => {
    const sid = await sessionWithOneTurn();
    fake.script(slowAnswer);
    const controller = new AbortController();
    const pending = fetch(`${app.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'json please', session_id: sid }),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    await fake.waitForRequests(2);
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitForCount(sid, 4);
  });
});

describe('deleting a session while a run holds it', () => {
  it('lets the delete through and refuses to save the run into the deleted session', async () => {
    const sid = await sessionWithOneTurn();
    fake.script({ kind: 'text', content: 'too late', delayMs: 100 });
    const running = completion({ message: 'slow', session_id: sid });
    await fake.waitForRequests(2);
    const removed = await sendJson(`${app.url}/api/v1/agent/session/${sid}`, 'DELETE');
    expect(removed.status).toBe(200);
    const response = await running;
    expect(response.status).toBe(404);
    expect((await json(response)).detail).toMatch(/deleted during the run; the turn was not saved/);
    expect((await fetch(`${app.url}/api/v1/agent/session/${sid}`)).status).toBe(404);
  });
});
