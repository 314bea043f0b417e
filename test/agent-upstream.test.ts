import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { defineTool } from '../src/tools/index.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { startBlackhole } from './support/blackhole.js';

const PROVIDER_KEY = 'sk-test-provider-key-that-must-never-leak';
let fake: FakeUpstream;
let t: TestApp;
let counterRuns = 0;

const counter = defineTool({
  name: 'counter',
  description: 'Counts its runs',
  parameters: Type.Object({}),
  run: () => `ran ${++counterRuns}`,
});

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp(
    { OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: PROVIDER_KEY, UPSTREAM_RETRY_BASE_MS: '5', UPSTREAM_IDLE_TIMEOUT_SECONDS: '0.5' },
    { tools: [counter] },
  );
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  counterRuns = 0;
});

const ask = (extra: Record<string, unknown> = {}) => post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('retries', () => {
  it('retries 5xx twice with backoff and then answers', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 503 }, { kind: 'text', content: 'third time lucky' });
    const response = await ask();
    expect(response.status).toBe(200);
    expect((await response.json()).content).toBe('third time lucky');
    expect(fake.requests).toHaveLength(3);
  });

  it('gives up after the retries with 502 UPSTREAM_ERROR', async () => {
    fake.setDefault({ kind: 'status', status: 500 });
    const response = await ask();
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(fake.requests).toHaveLength(3);
  });

  it('never retries a 400, and maps it to 502 with the provider message', async () => {
    fake.script({ kind: 'status', status: 400, body: { error: { message: 'model xyz does not exist', type: 'invalid_request_error' } } });
    const response = await ask();
    expect(response.status).toBe(502);
    const body = await response.json();
    expect(body.code).toBe('UPSTREAM_BAD_REQUEST');
    expect(body.detail).toMatch(/model xyz does not exist/);
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a context-length 400 to the client as CONTEXT_LENGTH_EXCEEDED', async () => {
    fake.script({ kind: 'status', status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens", code: 'context_length_exceeded' } } });
    const response = await ask();
    expect(response.status).toBe(400);
    expect((await response.json()).code).toBe('CONTEXT_LENGTH_EXCEEDED');
  });

  it('honours Retry-After on 429', async () => {
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '1' } }, { kind: 'text', content: 'patience' });
    const started = Date.now();
    const response = await ask();
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(fake.requests).toHaveLength(2);
  });

  it('maps a persistent 429 to 502 UPSTREAM_RATE_LIMITED', async () => {
    fake.setDefault({ kind: 'status', status: 429 });
    const response = await ask();
    expect(response.status).toBe(502);
    expect((await response.json()).code).toBe('UPSTREAM_RATE_LIMITED');
  });

  it('maps a rejected provider key to 502 without ever showing the key', async () => {
    fake.script({ kind: 'status', status: 401, body: { error: { message: `Incorrect API key provided: ${PROVIDER_KEY}` } } });
    const response = await ask();
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(JSON.parse(text).code).toBe('UPSTREAM_AUTH_FAILED');
    expect(text).not.toContain(PROVIDER_KEY);
    expect(t.logText()).not.toContain(PROVIDER_KEY);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
  });

  it('retries one model call, never the loop: a tool that ran does not run again', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }] },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 502 },
      { kind: 'text', content: 'counted' },
    );
    const response = await ask();
    expect(response.status).toBe(200);
    expect(counterRuns).toBe(1);
    expect(fake.requests).toHaveLength(4);
  });
});

describe('timeouts and dropped connections', () => {
  it('answers 504 when the provider stays silent past the idle timeout', async () => {
    fake.setDefault({ kind: 'silent' });
    const started = Date.now();
    const response = await ask();
    expect(response.status).toBe(504);
    expect(await response.json()).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(500 + 2_000);
    expect(fake.requests).toHaveLength(1);
  });

  it('ends a stream with one error event when the provider stays silent', async () => {
    fake.setDefault({ kind: 'silent' });
    const { events } = await readSse(await ask({ stream: true }));
    expect(events.map((e) => e.type)).toEqual(['run_started', 'error']);
    expect(events[1]).toMatchObject({ type: 'error', code: 'UPSTREAM_TIMEOUT', run_id: events[0].run_id });
  });

  it('times out a stream that goes quiet in the middle, without retrying', async () => {
    fake.script({ kind: 'handler', handle: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n');
    } });
    const { events } = await readSse(await ask({ stream: true }));
    expect(events.map((e) => e.type)).toEqual(['run_started', 'content', 'error']);
    expect(events[2].code).toBe('UPSTREAM_TIMEOUT');
    expect(fake.requests).toHaveLength(1);
  });

  it('sends the deltas that arrived, then exactly one error, when the provider drops mid-stream', async () => {
    fake.script({ kind: 'drop', content: 'abcdefghijkl', afterChunks: 3, chunkSize: 2 });
    const response = await ask({ stream: true });
    const { events } = await readSse(response);
    expect(events.map((e) => e.type)).toEqual(['run_started', 'content', 'content', 'content', 'error']);
    expect(events.map((e) => e.content ?? '').join('')).toBe('abcdef');
    expect(events[4]).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(typeof events[4].detail).toBe('string');
    expect(fake.requests).toHaveLength(1);
  });

  it('retries a connection dropped before any delta', async () => {
    fake.script({ kind: 'drop', content: 'x', afterChunks: 0 }, { kind: 'text', content: 'second try' });
    const response = await ask();
    expect(response.status).toBe(200);
    expect((await response.json()).content).toBe('second try');
  });

  it('aborts the provider call within a second when a client-side stream is abandoned', async () => {
    const controller = new AbortController();
    fake.script({ kind: 'text', content: 'a long answer that is paced slowly', chunkSize: 1, delayMs: 50 });
    const streaming = await fetch(`${t.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
      signal: controller.signal,
    });
    const reader = streaming.body!.getReader();
    await reader.read();
    controller.abort();
    const deadline = Date.now() + 2_000;
    while (!fake.requests[0]?.closedEarly && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.requests[0]?.closedEarly).toBe(true);
  });
});

describe('a provider that never accepts the connection', () => {
  it('gives up after UPSTREAM_CONNECT_TIMEOUT_SECONDS with 502 UPSTREAM_UNAVAILABLE, long before the idle timeout', async () => {
    const blackhole = await startBlackhole();
    const app = await startApp({ OPENAI_BASE_URL: blackhole.url, UPSTREAM_CONNECT_TIMEOUT_SECONDS: '0.3', UPSTREAM_MAX_RETRIES: '0', UPSTREAM_IDLE_TIMEOUT_SECONDS: '60' });
    try {
      const started = Date.now();
      const response = await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] });
      expect(response.status).toBe(502);
      expect(await response.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: expect.stringMatching(/could not be reached/) });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await app.close();
      await blackhole.close();
    }
  });
});

describe('no provider configured', () => {
  it('answers 503 saying what to set', async () => {
    const bare = await startApp({});
    try {
      const response = await post(`${bare.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] });
      expect(response.status).toBe(503);
      const body = await response.json();
      expect(body.code).toBe('MODEL_NOT_CONFIGURED');
      expect(body.detail).toMatch(/OPENAI_API_KEY/);
      expect(body.detail).toMatch(/OPENAI_BASE_URL/);
    } finally {
      await bare.close();
    }
  });
});
