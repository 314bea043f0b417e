import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';

const KEY = 'k3y-for-tests-0123456789';
let fake: FakeUpstream;
let secured: TestApp;
let open: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'ok' });
  secured = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, CORS_ORIGINS: 'https://app.example.com,https://admin.example.com' });
  open = await startApp({ OPENAI_BASE_URL: fake.url });
});
afterAll(async () => {
  await secured.close();
  await open.close();
  await fake.close();
});

const body = { messages: [{ role: 'user', content: 'hi' }] };

describe('API key', () => {
  it('accepts the configured key', async () => {
    const response = await post(`${secured.url}/api/v1/agent/completion`, body, { 'X-API-Key': KEY });
    expect(response.status).toBe(200);
  });

  it.each([
    ['no key', {}],
    ['a wrong key', { 'X-API-Key': 'wrong' }],
    ['an empty key', { 'X-API-Key': '' }],
    ['a 10 kB key', { 'X-API-Key': 'k'.repeat(10_000) }],
    ['a prefix of the key', { 'X-API-Key': KEY.slice(0, -1) }],
    ['the key as a Bearer token', { Authorization: `Bearer ${KEY}` }],
  ])('answers 401 {detail} for %s', async (_name, headers) => {
    const response = await post(`${secured.url}/api/v1/agent/completion`, body, headers as Record<string, string>);
    expect(response.status).toBe(401);
    expect(typeof (await response.json()).detail).toBe('string');
  });

  it('answers 401 for a non-ASCII key and never 500', async () => {
    const response = await fetch(`${secured.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': Buffer.from('clé-ü', 'utf8').toString('latin1') },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(401);
  });

  it('never takes the key from the query string, and never logs it', async () => {
    const response = await post(`${secured.url}/api/v1/agent/completion?api_key=${KEY}`, body);
    expect(response.status).toBe(401);
    await post(`${secured.url}/api/v1/agent/completion`, body, { 'X-API-Key': KEY });
    expect(secured.logText()).not.toContain(KEY);
  });

  it('leaves health and the API description open', async () => {
    expect((await fetch(`${secured.url}/health`)).status).toBe(200);
    expect((await fetch(`${secured.url}/api/v1/openapi.json`)).status).toBe(200);
  });

  it('protects the tool list', async () => {
    expect((await fetch(`${secured.url}/api/v1/tools`)).status).toBe(401);
    const listed = await fetch(`${secured.url}/api/v1/tools`, { headers: { 'X-API-Key': KEY } });
    const names = (await listed.json()).tools.map((tool: any) => tool.name);
    expect(names).toEqual(expect.arrayContaining(['calculate', 'get_server_time']));
  });

  it('needs no key when none is configured', async () => {
    expect((await post(`${open.url}/api/v1/agent/completion`, body)).status).toBe(200);
  });
});

describe('health and docs', () => {
  it('reports status and stores on both paths', async () => {
    for (const path of ['/health', '/api/v1/health']) {
      const response = await fetch(`${open.url}${path}`);
      expect(response.status).toBe(200);
      const health = await response.json();
      expect(health.status).toBe('ok');
      expect(health.stores).toHaveProperty('db');
      expect(health.stores).toHaveProperty('redis');
    }
  });

  it('serves an OpenAPI 3 document generated from the validating schemas', async () => {
    const document = await (await fetch(`${open.url}/api/v1/openapi.json`)).json();
    expect(document.openapi).toMatch(/^3\./);
    const operation = document.paths['/api/v1/agent/completion'].post;
    const schema = operation.requestBody.content['application/json'].schema;
    expect(schema.properties.messages.maxItems).toBe(100);
    expect(schema.properties.temperature).toMatchObject({ minimum: 0, maximum: 2 });
    expect(schema.properties.max_tokens).toMatchObject({ minimum: 1, maximum: 128000 });
    expect(document.paths['/health']).toBeDefined();
  });

  it('serves interactive docs at /docs, with their scripts, styles and document', async () => {
    const response = await fetch(`${open.url}/docs`, { redirect: 'follow' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    for (const [path, type] of [['/docs/static/swagger-ui.css', /text\/css/], ['/docs/static/swagger-initializer.js', /javascript/], ['/docs/json', /json/]] as const) {
      const asset = await fetch(`${open.url}${path}`);
      expect(asset.status, path).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(type);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }
    const documented = await (await fetch(`${open.url}/docs/json`)).json();
    expect(documented).toEqual(await (await fetch(`${open.url}/api/v1/openapi.json`)).json());
    const missing = await fetch(`${open.url}/docs/nope`);
    expect(missing.status).toBe(404);
    expect(typeof (await missing.json()).detail).toBe('string');
  });
});

describe('errors, headers and CORS', () => {
  it('answers unknown routes with JSON 404, a known path with another method with 405 and Allow, and refuses TRACE', async () => {
    const missing = await fetch(`${open.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect(missing.headers.get('x-powered-by')).toBeNull();
    for (const [method, path, allow] of [
      ['DELETE', '/api/v1/agent/completion', 'POST'],
      ['PUT', '/api/v1/agent/session/abc', 'DELETE, GET, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
      ['GET', '/api/v1/agent/runs/r1/cancel', 'POST'],
    ] as const) {
      const response = await fetch(`${open.url}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
      expect(await response.json()).toEqual({ detail: `${method} is not allowed on ${path}; allowed: ${allow}`, code: 'METHOD_NOT_ALLOWED' });
    }
    // fetch refuses to send TRACE, so ask with node:http
    const { request } = await import('node:http');
    const { port } = new URL(open.url);
    const status = await new Promise<number>((resolve) => {
      request({ host: '127.0.0.1', port, method: 'TRACE', path: '/health' }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      }).end();
    });
    expect([404, 405]).toContain(status);
  });

  it('sets the security headers on success, error (4xx and 5xx) and stream responses', async () => {
    fake.script({ kind: 'status', status: 400, body: { error: { message: 'unknown model' } } });
    const upstreamRefused = await post(`${open.url}/api/v1/agent/completion`, body);
    expect(upstreamRefused.status).toBe(502);
    const responses = [
      await fetch(`${open.url}/health`),
      await post(`${open.url}/api/v1/agent/completion`, { messages: [] }),
      await fetch(`${open.url}/missing`),
      upstreamRefused,
      await post(`${open.url}/api/v1/agent/completion`, { ...body, stream: true }),
    ];
    for (const response of responses) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      expect(response.headers.get('content-type')).toMatch(/charset=utf-8/);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      await response.arrayBuffer();
    }
    expect(responses[1]!.headers.get('cache-control')).toBe('no-store');
    // The docs page may load its own scripts and styles, and nothing from elsewhere.
    const docs = await fetch(`${open.url}/docs`);
    expect(docs.headers.get('content-security-policy')).toMatch(/^default-src 'self'; script-src 'self' 'unsafe-inline';.*frame-ancestors 'none'$/);
    expect(docs.headers.get('x-content-type-options')).toBe('nosniff');
    await docs.arrayBuffer();
  });

  it('allows any origin with "*" but never with credentials', async () => {
    const response = await fetch(`${open.url}/health`, { headers: { origin: 'https://evil.example' } });
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('echoes only an allowed origin when CORS_ORIGINS is a list, with a preflight for our headers', async () => {
    const allowed = await fetch(`${secured.url}/health`, { headers: { origin: 'https://app.example.com' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('vary')).toMatch(/Origin/i);
    const foreign = await fetch(`${secured.url}/health`, { headers: { origin: 'https://evil.example' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${secured.url}/api/v1/agent/completion`, {
      method: 'OPTIONS',
      headers: { origin: 'https://admin.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key,content-type' },
    });
    expect(preflight.status).toBeLessThan(300);
    const allowHeaders = preflight.headers.get('access-control-allow-headers')!.toLowerCase();
    for (const name of ['authorization', 'x-api-key', 'x-user-id', 'content-type', 'idempotency-key']) expect(allowHeaders).toContain(name);
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const foreignPreflight = await fetch(`${secured.url}/api/v1/agent/completion`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' },
    });
    expect(foreignPreflight.headers.get('access-control-allow-origin')).toBeNull();
    await foreignPreflight.arrayBuffer();
  });

  it('writes one JSON log line per request with the request id, and escapes injected newlines', async () => {
    await fetch(`${open.url}/health`, { headers: { 'x-user-id': 'eve' } });
    await post(`${open.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'x' }], model: 'evil\n{"level":60,"msg":"forged"}' }, { 'x-user-id': 'eve' });
    const lines = open.logText().split('\n');
    expect(lines.every((line) => line.startsWith('{') && JSON.parse(line))).toBe(true);
    expect(lines.some((line) => JSON.parse(line).msg === 'forged')).toBe(false);
    const requestLine = open.logs.find((entry) => entry.msg === 'request' && entry.route === '/health');
    expect(requestLine).toMatchObject({ method: 'GET', status: 200 });
    expect(typeof requestLine!.reqId).toBe('string');
    expect(requestLine!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The identity the request was served under (here, open mode naming itself through X-User-ID).
    const completionLine = open.logs.filter((entry) => entry.msg === 'request' && entry.route === '/api/v1/agent/completion').at(-1);
    expect(completionLine).toMatchObject({ method: 'POST', user: 'eve', via: 'open' });
  });
});

describe('bounded runs', () => {
  it('answers 503 with Retry-After beyond MAX_CONCURRENT_RUNS instead of queueing', async () => {
    const slow = await startFakeUpstream();
    slow.setDefault({ kind: 'text', content: 'slow answer', chunkSize: 1, delayMs: 40 });
    const bounded = await startApp({ OPENAI_BASE_URL: slow.url, MAX_CONCURRENT_RUNS: '2' });
    try {
      const first = [post(`${bounded.url}/api/v1/agent/completion`, body), post(`${bounded.url}/api/v1/agent/completion`, body)];
      await slow.waitForRequests(2);
      const rest = await Promise.all([1, 2, 3].map(() => post(`${bounded.url}/api/v1/agent/completion`, body)));
      for (const response of rest) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('1');
        expect((await response.json()).code).toBe('SERVER_BUSY');
      }
      for (const response of await Promise.all(first)) expect(response.status).toBe(200);
    } finally {
      await bounded.close();
      await slow.close();
    }
  });

  it('ends a stream with one error event when the run deadline passes', async () => {
    const slow = await startFakeUpstream();
    slow.setDefault({ kind: 'text', content: 'abcdefghijklmnopqrstuvwxyz', chunkSize: 1, delayMs: 100 });
    const bounded = await startApp({ OPENAI_BASE_URL: slow.url, RUN_DEADLINE_SECONDS: '1' });
    try {
      const { events } = await readSse(await post(`${bounded.url}/api/v1/agent/completion`, { ...body, stream: true }));
      const terminal = events.filter((event) => event.type === 'done' || event.type === 'error');
      expect(terminal).toEqual([expect.objectContaining({ type: 'error', code: 'RUN_DEADLINE_EXCEEDED' })]);
      expect(events.at(-1).type).toBe('error');
    } finally {
      await bounded.close();
      await slow.close();
    }
  });
});
