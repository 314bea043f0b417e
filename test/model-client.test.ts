import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chatCompletionsEndpoint } from '../src/model/openai-client.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';

// The model client's contract with the provider, seen from both ends: what the fake upstream
// receives, and what a client of the chassis gets back.

const PROVIDER_KEY = 'sk-model-client-test-key-never-shown';
const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: PROVIDER_KEY,
    UPSTREAM_RETRY_BASE_MS: '1',
    UPSTREAM_RETRY_AFTER_MAX_SECONDS: '0.2',
    UPSTREAM_IDLE_TIMEOUT_SECONDS: '2',
  });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => fake.reset());

const ask = (extra: Record<string, unknown> = {}) => post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], ...extra });
const chunk = (delta: object) => `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}`;

describe('what the provider receives', () => {
  it('one POST to {base}/chat/completions with our User-Agent and no Authorization when no key is set', async () => {
    const keyless = await startApp({ OPENAI_BASE_URL: `${fake.url}/` });
    try {
      const response = await post(`${keyless.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true });
      expect((await readSse(response)).events.at(-1).type).toBe('done');
    } finally {
      await keyless.close();
    }
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request!.path).toBe('/v1/chat/completions');
    expect(request!.headers['user-agent']).toBe(`agent-chassis/${VERSION}`);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers.accept).toBe('text/event-stream');
    expect(request!.headers.authorization).toBeUndefined();
    expect(request!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('sends text exactly, ASCII or not, in a message, a system prompt or the model name, with a Content-Length in bytes', async () => {
    // An all-ASCII body is encoded one byte per character without a scan (json-text.ts): any
    // other character anywhere must take the UTF-8 path, or the provider gets mangled text.
    const cases = [
      { messages: [{ role: 'user', content: 'plain ASCII' }] },
      { messages: [{ role: 'user', content: 'Grüße, 世界 😀' }] },
      { messages: [{ role: 'user', content: 'ascii' }], system_prompt: 'Réponds en français' },
      { messages: [{ role: 'user', content: 'ascii' }], model: 'modèle-ü' },
      { messages: [{ role: 'user', content: 'ascii' }, { role: 'assistant', content: 'é' }, { role: 'user', content: 'again' }] },
    ];
    for (const request of cases) {
      expect((await ask(request)).status).toBe(200);
      const received = fake.requests.at(-1)!;
      const sent = [...(request.system_prompt === undefined ? [] : [{ role: 'system', content: request.system_prompt }]), ...request.messages];
      expect(received.body.messages).toEqual(sent);
      if (request.model !== undefined) expect(received.body.model).toBe(request.model);
      expect(Number(received.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(received.body)));
    }
  });

  it('keeps a base URL query (an API version) after the path', () => {
    expect(chatCompletionsEndpoint('https://example.test/openai/v1/?api-version=2024-10-21')).toEqual({
      origin: 'https://example.test',
      path: '/openai/v1/chat/completions?api-version=2024-10-21',
    });
    expect(chatCompletionsEndpoint('https://api.openai.com/v1')).toEqual({ origin: 'https://api.openai.com', path: '/v1/chat/completions' });
  });
});

describe('which failures are retried', () => {
  it.each([408, 409, 429, 500, 502, 503, 504])('HTTP %i: retried, then answered', async (status) => {
    fake.script({ kind: 'status', status }, { kind: 'text', content: 'retried' });
    const response = await ask();
    expect(response.status).toBe(200);
    expect((await response.json()).content).toBe('retried');
    expect(fake.requests).toHaveLength(2);
  });

  it.each([400, 401, 403, 404, 422])('HTTP %i: never retried', async (status) => {
    fake.script({ kind: 'status', status }, { kind: 'text', content: 'must not be asked' });
    const response = await ask();
    expect(response.status).toBe(502);
    expect(fake.requests).toHaveLength(1);
  });

  it('waits a retry-after-ms up to UPSTREAM_RETRY_AFTER_MAX_SECONDS, and fails at once past it', async () => {
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after-ms': '200' } }, { kind: 'text', content: 'waited' });
    const started = Date.now();
    const atLimit = await ask();
    expect(atLimit.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(fake.requests).toHaveLength(2);

    fake.reset();
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after-ms': '201' } }, { kind: 'text', content: 'must not be asked' });
    const past = await ask();
    expect(past.status).toBe(502);
    expect(await past.json()).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED', upstream_status: 429, retry_after_seconds: 0.201 });
    expect(past.headers.get('retry-after')).toBe('1');
    expect(fake.requests).toHaveLength(1);
  });

  it('an error object before any chunk is retried; after a chunk it ends the stream, scrubbed of the key', async () => {
    const errorEvent = `data: ${JSON.stringify({ error: { message: `overloaded, key ${PROVIDER_KEY}`, type: 'server_error' } })}\n\n`;
    fake.script(
      { kind: 'handler', handle: (_req, res) => void res.writeHead(200, { 'content-type': 'text/event-stream' }).end(errorEvent) },
      { kind: 'text', content: 'after the error' },
    );
    const retried = await readSse(await ask({ stream: true }));
    expect(retried.events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe('after the error');
    expect(fake.requests).toHaveLength(2);

    fake.reset();
    fake.script({ kind: 'handler', handle: (_req, res) => void res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`${chunk({ content: 'half' })}\n\n${errorEvent}`) });
    const { events, raw } = await readSse(await ask({ stream: true }));
    expect(events.map((e) => e.type)).toEqual(['run_started', 'content', 'error']);
    expect(events[2]).toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(events[2].detail).toMatch(/overloaded/);
    expect(raw).not.toContain(PROVIDER_KEY);
    expect(fake.requests).toHaveLength(1);
  });

  it('an error page of megabytes is read to its first 64 KB, then dropped: the status still decides', async () => {
    const total = 16 * 1024 * 1024;
    let sent = 0;
    let closed = false;
    fake.script({
      kind: 'handler',
      handle: async (_req, res) => {
        res.once('close', () => (closed = true));
        res.writeHead(400, { 'content-type': 'text/html' });
        const page = Buffer.alloc(64 * 1024, 'x');
        while (sent < total && !closed) {
          sent += page.length;
          if (!res.write(page)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
        }
        res.end();
      },
    });
    const response = await ask();
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ code: 'UPSTREAM_BAD_REQUEST', upstream_status: 400 });
    // The chassis hung up long before the page ended.
    await expect.poll(() => closed).toBe(true);
    expect(sent).toBeLessThan(total / 2);
    expect(fake.requests).toHaveLength(1);
  });

  it('a chunk that is not JSON is a failed answer (502), never a 500', async () => {
    fake.setDefault({ kind: 'handler', handle: (_req, res) => void res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {"choices": [\n\n') });
    const response = await ask();
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ code: 'UPSTREAM_ERROR' });
  });
});

describe('reading answers', () => {
  it('reads a stream cut anywhere: CRLF line ends, comments, multi-byte characters split across writes', async () => {
    const content = 'Grüße, 世界 😀!';
    const body = Buffer.from(
      [': openrouter processing', chunk({ role: 'assistant' }), ...Array.from(content).map((c) => chunk({ content: c })), 'data: [DONE]', '']
        .map((line) => (line === '' ? '' : `${line}\r\n\r\n`))
        .join(''),
    );
    fake.script({
      kind: 'handler',
      handle: async (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // Three bytes at a time, each its own TCP write: lines, CRLFs and characters all get split.
        for (let offset = 0; offset < body.length; offset += 3) {
          res.write(body.subarray(offset, offset + 3));
          await new Promise((resolve) => setImmediate(resolve));
        }
        res.end();
      },
    });
    const { events } = await readSse(await ask({ stream: true }));
    expect(events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe(content);
    expect(events.at(-1).type).toBe('done');
  });

  it('takes a JSON completion from a provider that ignores "stream": true', async () => {
    fake.script({
      kind: 'handler',
      handle: (_req, res) =>
        void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'all at once' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } })),
    });
    const { events } = await readSse(await ask({ stream: true }));
    expect(events.map((e) => e.type)).toEqual(['run_started', 'content', 'done']);
    expect(events[1].content).toBe('all at once');
    expect(events[2].usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });
});
