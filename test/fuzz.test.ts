import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startApp, type TestApp } from './support/app.js';

// What an error body must never show: stack frames, file paths, SQL, raw provider output.
const LEAK = /\(.*:\d+:\d+\)|node_modules|SELECT |INSERT |at async |\/work\/|sqlite|syntax error at/i;

let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'ok' });
  t = await startApp({
    OPENAI_BASE_URL: fake.url,
    ENABLE_PERSISTENCE: 'true',
    DATABASE_URL: 'sqlite::memory:',
    ENABLE_USER_AUTH: 'true',
    JWT_SECRET_KEY: 'fuzz-secret-fuzz-secret-fuzz-secret-0123',
    ENABLE_RATE_LIMITING: 'false',
    CHASSIS_API_KEY: 'fuzz-key',
  });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});

const validMessage = fc.record({
  role: fc.constantFrom('system', 'user', 'assistant'),
  content: fc.string({ maxLength: 40 }),
});
const validBody = fc
  .record(
    {
      messages: fc.array(validMessage, { minLength: 1, maxLength: 5 }),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      max_tokens: fc.integer({ min: 1, max: 128_000 }),
      allowed_tools: fc.option(fc.subarray(['calculate', 'get_server_time']), { nil: null }),
      stream: fc.constant(false),
      metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
      system_prompt: fc.string({ maxLength: 40 }),
    },
    { requiredKeys: ['messages'] },
  )
  // fast-check likes "__proto__" and "constructor" as keys; a body carrying them is refused by design
  // (prototype poisoning, test/agent-validation.test.ts), so it is not a valid request.
  .filter((body) => !/"(?:__proto__|constructor)":/.test(JSON.stringify(body)));

async function send(method: string, path: string, body?: unknown) {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: { 'x-api-key': 'fuzz-key', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text };
}

function expectCleanError(status: number, text: string, path = ''): void {
  expect(status).toBeLessThan(500);
  const body = JSON.parse(text);
  // The OpenAI-compatible surface answers in OpenAI's error shape.
  if (path.startsWith('/v1/')) expect(typeof body.error.message).toBe('string');
  else expect(typeof body.detail).toBe('string');
  expect(text).not.toMatch(LEAK);
}

describe('schema-driven fuzzing', () => {
  it('never refuses a valid completion request', async () => {
    await fc.assert(
      fc.asyncProperty(validBody, async (body) => {
        const { status, text } = await send('POST', '/api/v1/agent/completion', body);
        expect(status, text).toBe(200);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses a valid request with one field made invalid: exactly 400 {detail}, and the model is never called', async () => {
    // Each breaks one rule of the schema: a wrong type (strict: no "1" for 1), a range, an enum, a size.
    const mutations: Array<[string, (body: Record<string, any>) => void]> = [
      ['temperature as a string', (b) => (b.temperature = '1')],
      ['temperature above 2', (b) => (b.temperature = 2.5)],
      ['max_tokens as a string', (b) => (b.max_tokens = '10')],
      ['max_tokens 0', (b) => (b.max_tokens = 0)],
      ['max_tokens fractional', (b) => (b.max_tokens = 1.5)],
      ['stream as a string', (b) => (b.stream = 'true')],
      ['an unknown role', (b) => (b.messages[0].role = 'robot')],
      ['content as a number', (b) => (b.messages[0].content = 123)],
      ['messages empty', (b) => (b.messages = [])],
      ['messages as an object', (b) => (b.messages = { role: 'user', content: 'x' })],
      ['allowed_tools as a string', (b) => (b.allowed_tools = 'calculate')],
      ['metadata as an array', (b) => (b.metadata = [1])],
      ['101 messages', (b) => (b.messages = Array.from({ length: 101 }, () => ({ role: 'user', content: 'x' })))],
    ];
    await fc.assert(
      fc.asyncProperty(validBody, fc.constantFrom(...mutations), async (body, [name, mutate]) => {
        const broken = structuredClone(body) as Record<string, any>;
        mutate(broken);
        const before = fake.requests.length;
        const { status, text } = await send('POST', '/api/v1/agent/completion', broken);
        expect(status, `${name}: ${text}`).toBe(400);
        expectCleanError(status, text);
        expect(fake.requests.length).toBe(before);
      }),
      { numRuns: 80 },
    );
  });

  it('answers any other JSON with a clean 4xx {detail}, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (body) => {
        const { status, text } = await send('POST', '/api/v1/agent/completion', body);
        if (status !== 200) expectCleanError(status, text);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps every documented route free of 5xx and leaks for random bodies and ids', async () => {
    const document = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
    const operations: Array<[string, string]> = [];
    for (const [path, item] of Object.entries<Record<string, unknown>>(document.paths)) {
      for (const method of Object.keys(item)) {
        if (['get', 'post', 'patch', 'delete', 'put'].includes(method)) operations.push([method.toUpperCase(), path]);
      }
    }
    expect(operations.length).toBeGreaterThan(2);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...operations),
        fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.object({ maxDepth: 2 })),
        fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent),
        async ([method, path], body, id) => {
          const concrete = path.replace(/\{[^}]+\}/g, id);
          const { status, text } = await send(method, concrete, method === 'GET' || method === 'DELETE' ? undefined : body);
          if (status >= 400) expectCleanError(status, text, concrete);
        },
      ),
      { numRuns: 150 },
    );
  });
});
