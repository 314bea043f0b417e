// Issue 11 (security review), HTTP side: credentials checked before the body is read and a request
// timeout (2), the general rate limit decided by the matched route (3), JSON nesting depth (6),
// bare OPTIONS, Last-Event-ID past the end, X-User-ID as UTF-8 (9). All through real sockets.
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sendJson, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
let keyed: TestApp;
const KEY = 'the-api-key';

beforeAll(async () => {
  fake = await startFakeUpstream();
  keyed = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: KEY }));
});
afterAll(async () => {
  await keyed.close();
  await fake.close();
});

/** Sends raw bytes and resolves with whatever the server answered (up to `waitMs`), and whether it closed the socket. */
function rawExchange(url: string, head: string, bodyPart: string | Buffer, waitMs: number): Promise<{ answer: string; closed: boolean; socket: Socket }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    let closed = false;
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      // A whole answer with a Content-Length is in: no need to wait for the socket to close.
      const end = answer.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(answer.slice(0, end));
      if (end >= 0 && length !== null && Buffer.byteLength(answer.slice(end + 4), 'latin1') >= Number(length[1])) finish();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
    const timer = setTimeout(finish, waitMs);
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ answer, closed, socket });
    }
    socket.once('connect', () => {
      socket.write(head);
      socket.write(bodyPart);
    });
    socket.once('error', reject);
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4).trim().replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '') || 'null');

describe('item 2: no work for a caller without credentials, and a request timeout', () => {
  it('a 12 MB completion body with no or a wrong API key is answered 401 from the headers, before the body arrives', async () => {
    for (const credentials of ['', `x-api-key: wrong\r\n`]) {
      const head = `POST /api/v1/agent/completion HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${12 * 1024 * 1024}\r\n${credentials}\r\n`;
      // Only the first 1 KB is ever sent: an answer can only come from the headers.
      const { answer, socket } = await rawExchange(keyed.url, head, `{"messages":[${'1,'.repeat(500)}`, 3000);
      socket.destroy();
      expect(statusOf(answer), credentials).toBe(401);
      expect(bodyOf(answer)).toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('the same for every route that needs credentials (sessions, runs, tools)', async () => {
    for (const [method, path] of [
      ['PATCH', '/api/v1/agent/session/abc/access'],
      ['POST', '/api/v1/agent/runs/abc/cancel'],
      ['GET', '/api/v1/tools'],
    ]) {
      const head = `${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${8 * 1024 * 1024}\r\n\r\n`;
      const { answer, socket } = await rawExchange(keyed.url, head, '{"is_public":', 3000);
      socket.destroy();
      expect(statusOf(answer), path).toBe(401);
    }
  });

  it('the early 401 still carries the CORS headers, so a browser can read it', async () => {
    const response = await fetch(`${keyed.url}/api/v1/tools`, { headers: { origin: 'https://app.example' } });
    expect(response.status).toBe(401);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('a route with no body schema reads at most 1 KiB even from a caller with credentials (1 KiB is read, more is 413)', async () => {
    const cancel = (body: string) => post(`${keyed.url}/api/v1/agent/runs/none/cancel`, body, { 'x-api-key': KEY });
    const at = `{"pad":"${'x'.repeat(1024 - 10)}"}`;
    expect(Buffer.byteLength(at)).toBe(1024);
    expect((await cancel(at)).status).toBe(404); // read, then: no such run
    const over = await cancel(`{"pad":"${'x'.repeat(1024)}"}`);
    expect(over.status).toBe(413);
    expect((await json(over)).code).toBe('BODY_TOO_LARGE');
  });

  it('/auth/login with a 12.5 MB body is refused at once (413), never read', async () => {
    const { startApp: start } = await import('./support/app.js');
    const accounts = await start({ ENABLE_USER_AUTH: 'true', JWT_SECRET_KEY: 'x'.repeat(40), DATABASE_URL: 'sqlite::memory:' });
    try {
      const head = `POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${12.5 * 1024 * 1024}\r\n\r\n`;
      const { answer, socket } = await rawExchange(accounts.url, head, '{"email":"a@example.test","password":"', 3000);
      socket.destroy();
      expect(statusOf(answer)).toBe(413);
      expect(bodyOf(answer)).toMatchObject({ code: 'BODY_TOO_LARGE' });
    } finally {
      await accounts.close();
    }
  });

  it('REQUEST_TIMEOUT_SECONDS: a body trickled in slowly is cut off with a JSON 408 and the connection closed', async () => {
    const slow = await startApp({ REQUEST_TIMEOUT_SECONDS: '1' });
    try {
      const head = `POST /api/v1/agent/completion HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`;
      const pending = rawExchange(slow.url, head, '{', 8000);
      const { answer } = await pending;
      expect(statusOf(answer)).toBe(408);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      expect(bodyOf(answer)).toMatchObject({ code: 'VALIDATION_FAILED' });
    } finally {
      await slow.close();
    }
  });

  it('REQUEST_TIMEOUT_SECONDS does not cut a long streamed answer (the request itself arrived in time)', async () => {
    const slow = await startApp({ REQUEST_TIMEOUT_SECONDS: '1', OPENAI_BASE_URL: fake.url, UPSTREAM_MAX_RETRIES: '0' });
    try {
      fake.script({ kind: 'text', content: 'a slow answer in many pieces', chunkSize: 2, delayMs: 150 });
      const response = await post(`${slow.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true });
      const { events } = await readSse(response);
      expect(events.at(-1)).toMatchObject({ type: 'done' });
    } finally {
      await slow.close();
    }
  });

  it('refuses a bad REQUEST_TIMEOUT_SECONDS at start, naming it', async () => {
    await expect(startApp({ REQUEST_TIMEOUT_SECONDS: '0' })).rejects.toThrow(/REQUEST_TIMEOUT_SECONDS/);
  });
});

describe('item 3: the general rate limit follows the matched route', () => {
  it('percent-encoded paths are counted like the plain ones', async () => {
    const limited = await startApp({ ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '3' });
    try {
      const statuses: number[] = [];
      // Written as raw request lines: fetch would normalise nothing here, but keep it explicit.
      for (const path of ['/api/%761/tools', '/api/v%31/tools', '/%61pi/v1/tools', '/api/v1/tools']) {
        const { answer, socket } = await rawExchange(limited.url, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`, '', 3000);
        socket.destroy();
        statuses.push(statusOf(answer));
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await limited.close();
    }
  });

  it('health and the OpenAPI document stay unlimited, however their path is spelled', async () => {
    const limited = await startApp({ ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '1' });
    try {
      for (let i = 0; i < 3; i++) {
        const { answer, socket } = await rawExchange(limited.url, `GET /api/v1/%68ealth HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`, '', 3000);
        socket.destroy();
        expect(statusOf(answer)).not.toBe(429);
      }
    } finally {
      await limited.close();
    }
  });
});

/** `{"a":{"a":…}}` nested `depth` objects deep. */
const nested = (depth: number): string => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

describe('item 6: JSON nesting depth', () => {
  it('metadata nested 5,000 levels (a body of about 30 KB) gets a 400 naming the limit, not a 500', async () => {
    const body = `{"messages":[{"role":"user","content":"hi"}],"metadata":${nested(5000)}}`;
    expect(body.length).toBeLessThan(31_000);
    const response = await post(`${keyed.url}/api/v1/agent/completion`, body, { 'x-api-key': KEY });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ code: 'JSON_TOO_DEEP', detail: expect.stringContaining('64') });
  });

  it('a body 64 levels deep is read; 65 levels is refused', async () => {
    // The body object is level 1, metadata level 2: metadata holds 62 more objects at the limit.
    const at = `{"message":"hi","metadata":${nested(63)}}`;
    const over = `{"message":"hi","metadata":${nested(64)}}`;
    fake.setDefault({ kind: 'text', content: 'ok' });
    const atLimit = await post(`${keyed.url}/api/v1/agent/completion`, at, { 'x-api-key': KEY });
    expect(atLimit.status).toBe(200);
    const past = await post(`${keyed.url}/api/v1/agent/completion`, over, { 'x-api-key': KEY });
    expect(past.status).toBe(400);
    expect((await json(past)).code).toBe('JSON_TOO_DEEP');
  });

  it('applies to every JSON body (session access PATCH, account routes)', async () => {
    const patch = await sendJson(`${keyed.url}/api/v1/agent/session/abc/access`, 'PATCH', { 'x-api-key': KEY, 'x-user-id': 'u' }, JSON.parse(nested(3)));
    expect(patch.status).not.toBe(500);
    const deep = await fetch(`${keyed.url}/api/v1/agent/session/abc/access`, {
      method: 'PATCH',
      headers: { 'x-api-key': KEY, 'x-user-id': 'u', 'content-type': 'application/json' },
      body: `{"whitelist":[${'['.repeat(4000)}${']'.repeat(4000)}]}`,
    });
    expect(deep.status).toBe(400);
    expect((await json(deep)).code).toBe('JSON_TOO_DEEP');
  });

  it("the model's tool-call arguments are bounded too: a deep one becomes a tool error the model reads, the run completes", async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'c1', name: 'calculate', arguments: `{"expression":${nested(5000)}}` }] },
      { kind: 'text', content: 'done' },
    );
    const response = await post(`${keyed.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': KEY });
    expect(response.status).toBe(200);
    const toolResult = fake.requests.at(-1)!.body.messages.find((message: any) => message.role === 'tool');
    expect(toolResult.content).toMatch(/nest more than 64 levels/);
  });

  it('a provider answer nested past the bound is an UPSTREAM_ERROR (502), not a 500', async () => {
    fake.script({ kind: 'handler', handle: (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(`{"choices":[{"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"extra":${nested(5000)}}`) });
    const response = await post(`${keyed.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': KEY });
    expect(response.status).toBe(502);
    expect((await json(response)).code).toBe('UPSTREAM_ERROR');
  });

  it('brackets inside strings do not count', async () => {
    const response = await post(`${keyed.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: '['.repeat(10_000) + '{'.repeat(10_000) }] }, { 'x-api-key': KEY });
    expect(response.status).toBe(200);
  });
});

describe('item 9: smaller ones', () => {
  it('a bare OPTIONS gets our JSON error shape; a real preflight still gets 204', async () => {
    const bare = await fetch(`${keyed.url}/api/v1/tools`, { method: 'OPTIONS' });
    expect(bare.status).toBe(400);
    expect(bare.headers.get('content-type')).toMatch(/application\/json/);
    expect(await json(bare)).toMatchObject({ code: 'VALIDATION_FAILED', detail: expect.stringContaining('preflight') });
    const preflight = await fetch(`${keyed.url}/api/v1/tools`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } });
    expect(preflight.status).toBe(204);
  });

  it('Last-Event-ID at or past the end of a finished run answers 204 (EventSource stops); before the end, the rest', async () => {
    fake.script({ kind: 'text', content: 'abcdef', chunkSize: 2 });
    const first = await post(`${keyed.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true }, { 'x-api-key': KEY });
    const runId = first.headers.get('x-run-id')!;
    const { events } = await readSse(first);
    const last = events.length;
    const streamFrom = (lastEventId: string) => fetch(`${keyed.url}/api/v1/agent/runs/${runId}/stream`, { headers: { 'x-api-key': KEY, 'last-event-id': lastEventId } });
    for (const seq of [last, last + 5]) {
      const response = await streamFrom(`${runId}:${seq}`);
      expect(response.status, `seq ${seq}`).toBe(204);
      expect(await response.text()).toBe('');
    }
    const byQuery = await fetch(`${keyed.url}/api/v1/agent/runs/${runId}/stream?after=${last}`, { headers: { 'x-api-key': KEY } });
    expect(byQuery.status).toBe(204);
    const rest = await streamFrom(`${runId}:${last - 1}`);
    expect(rest.status).toBe(200);
    const replayed = await readSse(rest);
    expect(replayed.events).toHaveLength(1);
    expect(replayed.events[0]).toMatchObject({ type: 'done' });
  });

  it('X-User-ID is read as UTF-8, so a non-ASCII id matches the access lists set through JSON', async () => {
    const owner = { 'x-api-key': KEY, 'x-user-id': 'alice' };
    fake.setDefault({ kind: 'text', content: 'ok' });
    const created = await post(`${keyed.url}/api/v1/agent/completion`, { message: 'hello' }, owner);
    const sessionId = (await json(created)).session_id;
    expect((await sendJson(`${keyed.url}/api/v1/agent/session/${sessionId}/access`, 'PATCH', owner, { whitelist: ['José', '張偉'] })).status).toBe(200);
    for (const id of ['José', '張偉']) {
      // The header's bytes are the UTF-8 of the id, as any HTTP client sends them.
      const status = await new Promise<number>((resolve, reject) => {
        const request = httpRequest(`${keyed.url}/api/v1/agent/session/${sessionId}`, { headers: { 'x-api-key': KEY, 'x-user-id': Buffer.from(id, 'utf8').toString('latin1') } }, (response) => {
          response.resume();
          resolve(response.statusCode!);
        });
        request.on('error', reject);
        request.end();
      });
      expect(status, id).toBe(200);
    }
  });

  it('X-User-ID bytes that are not UTF-8 are refused with 401, not guessed at', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${keyed.url}/api/v1/tools`, { headers: { 'x-api-key': KEY, 'x-user-id': 'Jos\u00e9' /* one latin1 byte 0xE9 */ } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on('error', reject);
      request.end();
    });
    expect(status).toBe(401);
  });
});
