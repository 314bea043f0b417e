import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { defineTool } from '../src/tools/index.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';

let fake: FakeUpstream;
let t: TestApp;
let toolSawAbort: (reason: unknown) => void = () => undefined;
let toolStarted: () => void = () => undefined;

// A tool that only ends when its signal aborts, and tells the test when it started and why it stopped.
const patient = defineTool({
  name: 'patient',
  description: 'Waits until cancelled',
  parameters: Type.Object({}),
  timeoutSeconds: 30,
  run(_args, { signal }) {
    toolStarted();
    return new Promise((resolve) =>
      signal.addEventListener('abort', () => {
        toolSawAbort(signal.reason);
        resolve('aborted');
      }),
    );
  },
});

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: 'k', }, { tools: [patient] });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => fake.reset());

const headers = { 'X-API-Key': 'k', 'X-User-ID': 'alice' };
const completion = (body: Record<string, unknown>, extra: Record<string, string> = {}) =>
  post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], ...body }, { ...headers, ...extra });
const getRun = (runId: string, who = headers) => fetch(`${t.url}/api/v1/agent/runs/${runId}`, { headers: who });
const cancel = (runId: string, who = headers) => fetch(`${t.url}/api/v1/agent/runs/${runId}/cancel`, { method: 'POST', headers: who });

/** Reads SSE frames as they arrive, so a test can act in the middle of a stream. */
async function* frames(response: Response): AsyncGenerator<{ id: string | undefined; event: any }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (data !== undefined) yield { id, event: JSON.parse(data) };
    }
  }
}

describe('run status', () => {
  it('describes a finished run: status, stop_reason, usage, timings', async () => {
    fake.script({ kind: 'text', content: 'all good' });
    const answer = await (await completion({})).json();
    const response = await getRun(answer.run_id);
    expect(response.status).toBe(200);
    const run = await response.json();
    expect(run).toMatchObject({ run_id: answer.run_id, status: 'completed', stop_reason: 'stop', session_id: null, error: null });
    expect(run.usage).toEqual(answer.usage);
    expect(run.event_count).toBe(3); // run_started, content, done
    expect(Date.parse(run.ended_at)).toBeGreaterThanOrEqual(Date.parse(run.created_at));
  });

  it('records a failed run with its error', async () => {
    fake.script({ kind: 'status', status: 400 });
    const response = await completion({});
    expect(response.status).toBe(502);
    const runId = response.headers.get('x-run-id')!;
    const run = await (await getRun(runId)).json();
    expect(run).toMatchObject({ status: 'failed', error: { code: 'UPSTREAM_BAD_REQUEST' } });
  });

  it('shows a run only to its owner, and 404 for unknown ids', async () => {
    fake.script({ kind: 'text', content: 'mine' });
    const { run_id } = await (await completion({})).json();
    expect((await getRun(run_id, { 'X-API-Key': 'k', 'X-User-ID': 'mallory' } as any)).status).toBe(403);
    expect((await cancel(run_id, { 'X-API-Key': 'k', 'X-User-ID': 'mallory' } as any)).status).toBe(403);
    expect((await getRun(run_id, {} as any)).status).toBe(401);
    const missing = await getRun('run_doesnotexist');
    expect(missing.status).toBe(404);
    expect(typeof (await missing.json()).detail).toBe('string');
  });
});

describe('replay and follow', () => {
  it('replays the events after Last-Event-ID and follows live to the same terminal event', async () => {
    const words = Array.from({ length: 30 }, (_, i) => `w${i} `);
    fake.script({ kind: 'text', content: words.join(''), chunks: words, delayMs: 15 });
    const first = await completion({ stream: true });
    const runId = first.headers.get('x-run-id')!;
    // The first client reads 6 events (run_started + 5 deltas) and then stops reading (it stays
    // connected: a client-side run stops when its client leaves; sessions keep running, see the sessions tests).
    const firstStream = frames(first);
    const seen: Array<{ id: string | undefined; event: any }> = [];
    while (seen.length < 6) seen.push((await firstStream.next()).value!);
    const resumed = await fetch(`${t.url}/api/v1/agent/runs/${runId}/stream`, { headers: { ...headers, 'Last-Event-ID': seen.at(-1)!.id! } });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toMatch(/text\/event-stream/);
    const rest: Array<{ id: string | undefined; event: any }> = [];
    for await (const frame of frames(resumed)) rest.push(frame);
    const all = [...seen, ...rest];
    expect(all.map((frame) => frame.id)).toEqual(all.map((_, index) => `${runId}:${index + 1}`));
    expect(all.filter((f) => f.event.type === 'content').map((f) => f.event.content).join('')).toBe(words.join(''));
    expect(all.at(-1)!.event).toMatchObject({ type: 'done', run_id: runId });
    for await (const _ of firstStream); // the first client gets the same ending
  });

  it('accepts ?after=seq, and replays a finished run in full', async () => {
    fake.script({ kind: 'text', content: 'abcdef', chunkSize: 2 });
    const run_id = (await readSse(await completion({ stream: true }))).events[0].run_id;
    const full = await readSse(await fetch(`${t.url}/api/v1/agent/runs/${run_id}/stream`, { headers }));
    expect(full.events.map((e) => e.type)).toEqual(['run_started', 'content', 'content', 'content', 'done']);
    const tail = await readSse(await fetch(`${t.url}/api/v1/agent/runs/${run_id}/stream?after=3`, { headers }));
    expect(tail.events.map((e) => e.content ?? e.type)).toEqual(['ef', 'done']);
  });

  it('refuses a Last-Event-ID of another run', async () => {
    fake.script({ kind: 'text', content: 'x' });
    const { run_id } = await (await completion({})).json();
    const response = await fetch(`${t.url}/api/v1/agent/runs/${run_id}/stream`, { headers: { ...headers, 'Last-Event-ID': 'run_other:2' } });
    expect(response.status).toBe(400);
  });
});

describe('cancel', () => {
  it('aborts a slow provider call: the provider sees its connection close, streams get RUN_CANCELLED', async () => {
    fake.script({ kind: 'text', content: 'x'.repeat(200), chunkSize: 1, delayMs: 20 });
    const response = await completion({ stream: true });
    const runId = response.headers.get('x-run-id')!;
    const events: any[] = [];
    let cancelled: Response | undefined;
    for await (const { event } of frames(response)) {
      events.push(event);
      if (events.length === 3) cancelled = await cancel(runId);
    }
    expect(cancelled!.status).toBe(200);
    expect((await cancelled!.json()).status).toBe('cancelled');
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'RUN_CANCELLED', run_id: runId });
    expect(events.filter((e) => e.type === 'error' || e.type === 'done')).toHaveLength(1);
    await waitFor(() => fake.requests[0]?.closedEarly === true);
    expect(fake.requests[0]!.closedEarly).toBe(true);
  });

  it('signals a running tool, and is idempotent', async () => {
    const aborted = new Promise<unknown>((resolve) => (toolSawAbort = resolve));
    const started = new Promise<void>((resolve) => (toolStarted = resolve));
    fake.script({ kind: 'tool_calls', calls: [{ name: 'patient', arguments: '{}' }] });
    const response = await completion({ stream: true });
    const stream = frames(response);
    const first = (await stream.next()).value!.event;
    expect(first.type).toBe('run_started');
    await started;
    const cancelled = await cancel(first.run_id);
    expect(cancelled.status).toBe(200);
    expect((await cancelled.json()).status).toBe('cancelled');
    expect(await aborted).toMatchObject({ code: 'RUN_CANCELLED' });
    const again = await cancel(first.run_id);
    expect(again.status).toBe(200);
    expect((await again.json()).status).toBe('cancelled');
    const rest: any[] = [];
    for await (const { event } of stream) rest.push(event);
    expect(rest.map((e) => e.type)).toEqual(['tool_call', 'error']);
    expect(rest[1].code).toBe('RUN_CANCELLED');
    // The tool call never got a result, so the model was not called again.
    expect(fake.requests).toHaveLength(1);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('retention of finished runs', () => {
  // A 1-step JSON run logs 3 events (run_started, content, done) and counts 16 more for its
  // bookkeeping: 19 each, so a budget of 38 holds exactly two finished runs.
  let small: TestApp;
  beforeAll(async () => {
    small = await startApp({ OPENAI_BASE_URL: fake.url, RUN_EVENTS_MAX_KEPT: '38' });
  });
  afterAll(() => small.close());
  const run = async () => {
    const response = await post(`${small.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(200);
    return ((await response.json()) as { run_id: string }).run_id;
  };
  const status = async (runId: string) => (await fetch(`${small.url}/api/v1/agent/runs/${runId}`)).status;

  it('keeps finished runs up to RUN_EVENTS_MAX_KEPT, then drops the oldest first', async () => {
    const first = await run();
    const second = await run();
    // At the budget: both kept, and replayable in full.
    expect([await status(first), await status(second)]).toEqual([200, 200]);
    const replay = await readSse(await fetch(`${small.url}/api/v1/agent/runs/${first}/stream`));
    expect(replay.events.map((e) => e.type)).toEqual(['run_started', 'content', 'done']);
    // One past it: the oldest goes, the newer two stay.
    const third = await run();
    expect([await status(first), await status(second), await status(third)]).toEqual([404, 200, 200]);
  });
});
