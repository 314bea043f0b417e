import { afterAll, beforeAll, expect, it } from 'vitest';
import { post, readSse, startApp, type TestApp } from './support/app.js';

// The last-resort path (#67): a bug (here a model client that throws a plain TypeError, not one of
// our errors) answers 500 with a fixed detail, logs the stack under the request id, and the
// process goes on serving.
let t: TestApp;
const SECRET_TEXT = 'internal detail 0xdeadbeef';

beforeAll(async () => {
  t = await startApp(
    {},
    {
      model: {
        async *call() {
          throw new TypeError(SECRET_TEXT);
        },
        close: async () => undefined,
      },
    },
  );
});
afterAll(() => t.close());

const body = { messages: [{ role: 'user', content: 'hi' }] };

it('answers a bug with 500 {"detail": "Internal server error"}, logs it under the request id, and keeps serving', async () => {
  const response = await post(`${t.url}/api/v1/agent/completion`, body);
  expect(response.status).toBe(500);
  const text = await response.text();
  expect(JSON.parse(text)).toMatchObject({ detail: 'Internal server error', code: 'INTERNAL_ERROR' });
  expect(text).not.toContain(SECRET_TEXT);
  expect(text).not.toMatch(/at .*\.ts:\d+/);
  const requestId = response.headers.get('x-request-id');
  const logged = t.logs.find((line) => line.level === 50 && line.reqId === requestId);
  expect(logged?.err?.message).toBe(SECRET_TEXT);
  expect(logged?.err?.stack).toMatch(/TypeError/);
  expect((await fetch(`${t.url}/health`)).status).toBe(200);
});

it('ends a stream hit by a bug with one INTERNAL_ERROR event and no internal text', async () => {
  const response = await post(`${t.url}/api/v1/agent/completion`, { ...body, stream: true });
  const { events, raw } = await readSse(response);
  expect(events.at(-1)).toMatchObject({ type: 'error', code: 'INTERNAL_ERROR', detail: 'Internal server error' });
  expect(events.filter((event) => event.type === 'error' || event.type === 'done')).toHaveLength(1);
  expect(raw).not.toContain(SECRET_TEXT);
  expect((await fetch(`${t.url}/health`)).status).toBe(200);
});
