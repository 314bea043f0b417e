import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, startApp, type TestApp } from './support/app.js';

let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'fine' });
  t = await startApp({ OPENAI_BASE_URL: fake.url });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
});

const url = () => `${t.url}/api/v1/agent/completion`;
const user = (content: string) => ({ role: 'user', content });

async function expectStatus(body: unknown, status: number, detail?: RegExp) {
  const response = await post(url(), body);
  const text = await response.text();
  expect(response.status, text).toBe(status);
  const json = JSON.parse(text);
  if (status >= 400) {
    expect(typeof json.detail).toBe('string');
    if (detail) expect(json.detail).toMatch(detail);
  }
  return json;
}

describe('input limits, each at and past the limit', () => {
  it('counts message length in code points: 100,000 emoji pass, 100,001 fail naming the limit', async () => {
    await expectStatus({ messages: [user('😀'.repeat(100_000))] }, 200);
    await expectStatus({ messages: [user('😀'.repeat(100_001))] }, 400, /100000 characters/);
    expect(fake.requests).toHaveLength(1);
  });

  it('accepts 100 messages and refuses 101, naming the limit', async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => user(`m${i}`));
    await expectStatus({ messages: many(100) }, 200);
    await expectStatus({ messages: many(101) }, 400, /100 items/);
  });

  it('limits metadata to 10,000 bytes of UTF-8 JSON and requires an object', async () => {
    const sized = (bytes: number) => ({ k: 'x'.repeat(bytes - '{"k":""}'.length) });
    expect(JSON.stringify(sized(10_000)).length).toBe(10_000);
    await expectStatus({ messages: [user('a')], metadata: sized(10_000) }, 200);
    await expectStatus({ messages: [user('a')], metadata: sized(10_001) }, 400, /10000 bytes/);
    await expectStatus({ messages: [user('a')], metadata: { k: 'é'.repeat(4_997) } }, 400, /bytes/);
    await expectStatus({ messages: [user('a')], metadata: [1, 2] }, 400, /metadata/);
  });

  it('keeps temperature within 0..2 and max_tokens within 1..128000, with strict types', async () => {
    for (const temperature of [0, 2]) await expectStatus({ messages: [user('a')], temperature }, 200);
    for (const temperature of [-0.01, 2.01, '1']) await expectStatus({ messages: [user('a')], temperature }, 400, /temperature/);
    for (const max_tokens of [1, 128_000]) await expectStatus({ messages: [user('a')], max_tokens }, 200);
    for (const max_tokens of [0, 128_001, 1.5, '10']) await expectStatus({ messages: [user('a')], max_tokens }, 400, /max_tokens/);
  });

  it('refuses unknown roles, wrong content types and unpaired tool messages', async () => {
    await expectStatus({ messages: [{ role: 'wizard', content: 'x' }] }, 400, /role/);
    await expectStatus({ messages: [{ role: 'user', content: 42 }] }, 400, /content/);
    await expectStatus({ messages: [{ role: 'tool', content: 'x' }] }, 400, /tool_call_id/);
    await expectStatus({ messages: [{ role: 'user', content: null }] }, 400, /null/);
    await expectStatus({ messages: [] }, 400, /messages/);
    await expectStatus({ messages: [user('a')], stream: 'yes' }, 400, /stream/);
    await expectStatus({ messages: [user('a')], allowed_tools: 'calculate' }, 400, /allowed_tools/);
  });
});

describe('modes', () => {
  it('refuses messages together with message or session_id, and a body with neither', async () => {
    await expectStatus({ messages: [user('a')], message: 'b' }, 400, /not both/);
    await expectStatus({ messages: [user('a')], session_id: 'abc' }, 400, /not both/);
    await expectStatus({}, 400, /messages/);
    await expectStatus({ session_id: 'abc' }, 400, /message/);
  });

  it('explains how to enable server-side mode when persistence is off', async () => {
    await expectStatus({ message: 'hello' }, 400, /ENABLE_PERSISTENCE=true/);
  });
});

describe('malformed requests never reach a 500', () => {
  const raw = (body: string, contentType = 'application/json') =>
    fetch(url(), { method: 'POST', headers: { 'content-type': contentType }, body });

  it.each([
    ['malformed JSON', '{"messages": [', 'application/json'],
    ['an empty body', '', 'application/json'],
    ['a top-level array', '[{"role":"user","content":"x"}]', 'application/json'],
    ['a string', '"hello"', 'application/json'],
    ['prototype poisoning', '{"__proto__":{"is_admin":true},"messages":[{"role":"user","content":"x"}]}', 'application/json'],
    ['constructor poisoning', '{"constructor":{"prototype":{"x":1}},"messages":[{"role":"user","content":"x"}]}', 'application/json'],
  ])('%s → 400 with a detail', async (_name, body, contentType) => {
    const response = await raw(body, contentType);
    expect(response.status).toBe(400);
    const json = await response.json();
    expect(typeof json.detail).toBe('string');
    expect(JSON.stringify(json)).not.toMatch(/node_modules|at async|\(.*:\d+:\d+\)/);
  });

  it.each([
    ['text/plain', '{"messages":[{"role":"user","content":"x"}]}'],
    ['application/x-www-form-urlencoded', 'messages=x'],
    ['multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="messages"\r\n\r\nx\r\n--b--\r\n'],
  ])('a %s body → 415 UNSUPPORTED_MEDIA_TYPE naming application/json', async (contentType, body) => {
    const response = await raw(body, contentType);
    expect(response.status).toBe(415);
    expect(await response.json()).toEqual({ detail: expect.stringContaining('application/json'), code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('a Content-Length larger than the body → 400, and the server stays healthy', async () => {
    const { port } = new URL(t.url);
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/agent/completion', headers: { 'content-type': 'application/json', 'content-length': '10' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end('{}');
      setTimeout(() => request.destroy(), 1000).unref();
    }).catch(() => 400);
    expect(status === 400 || status === 0).toBe(true);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });

  /** Sends raw bytes and returns the status line and JSON body of the answer. */
  async function rawExchange(bytes: string): Promise<{ head: string; json: any }> {
    const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
    let raw = '';
    socket.on('data', (chunk) => (raw += chunk));
    socket.end(bytes);
    await once(socket, 'close');
    const split = raw.indexOf('\r\n\r\n');
    return { head: raw.slice(0, split), json: JSON.parse(raw.slice(split + 4)) };
  }

  it('a Content-Length smaller than the body → 400 {detail, code} with the security headers; the model is never called', async () => {
    const body = JSON.stringify({ messages: [user('hi')] });
    const { head, json } = await rawExchange(
      `POST /api/v1/agent/completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n${body}`,
    );
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head.toLowerCase()).toContain('x-content-type-options: nosniff');
    expect(json).toEqual({ detail: expect.stringMatching(/Content-Length/), code: 'VALIDATION_FAILED' });
    expect(fake.requests).toHaveLength(0);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });

  it('headers over Node\'s 16 KB limit → 431 {detail, code}', async () => {
    const { head, json } = await rawExchange(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    expect(json).toEqual({ detail: expect.stringMatching(/headers/), code: 'VALIDATION_FAILED' });
  });

  it('a gzip bomb (20 KB inflating to 20 MiB) → 415 without inflating it; the server stays healthy', async () => {
    const bomb = gzipSync(JSON.stringify({ messages: [user('a'.repeat(20 * 1024 * 1024))] }));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const response = await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb });
    expect(response.status).toBe(415);
    expect(await response.json()).toEqual({ detail: expect.stringMatching(/uncompressed/), code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(fake.requests).toHaveLength(0);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });

  it('accepts the largest valid body (100 messages × 100,000 chars) and answers 413 above the byte cap', async () => {
    const big = { messages: Array.from({ length: 100 }, () => user('a'.repeat(100_000))) };
    await expectStatus(big, 200);
    const response = await post(url(), `{"messages":[{"role":"user","content":"${'a'.repeat(17 * 1024 * 1024)}"}]}`);
    expect(response.status).toBe(413);
    expect((await response.json()).detail).toMatch(/too large/);
  });
});
