import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';

let fake: FakeUpstream;
let memory: TestApp;
let durable: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  memory = await startApp({ OPENAI_BASE_URL: fake.url });
  // With a database the keys live there; events expire at once, so replays must use the stored response.
  durable = await startApp({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:', RUN_EVENTS_TTL_SECONDS: '0' });
});
afterAll(async () => {
  await memory.close();
  await durable.close();
  await fake.close();
});
beforeEach(() => fake.reset());

let counter = 0;
const freshKey = () => `key-${Date.now()}-${counter++}`;
const body = (content = 'hi', extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content }], ...extra });
const send = (app: TestApp, key: string, payload: unknown, user = 'alice') =>
  post(`${app.url}/api/v1/agent/completion`, payload, { 'Idempotency-Key': key, 'X-User-ID': user });

describe.each([
  ['in memory', () => memory],
  ['in the database', () => durable],
])('Idempotency-Key (%s)', (_name, app) => {
  it('returns the saved answer to a retry without calling the model again', async () => {
    fake.script({ kind: 'text', content: 'only once' });
    const key = freshKey();
    const first = await send(app(), key, body());
    const firstBody = await first.json();
    const again = await send(app(), key, body());
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(firstBody);
    expect(again.headers.get('x-run-id')).toBe(firstBody.run_id);
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses the same key with a different body (409)', async () => {
    fake.script({ kind: 'text', content: 'a' });
    const key = freshKey();
    await (await send(app(), key, body('one'))).json();
    const other = await send(app(), key, body('two'));
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(fake.requests).toHaveLength(1);
  });

  it('scopes keys to the caller', async () => {
    fake.setDefault({ kind: 'text', content: 'yours' });
    const key = freshKey();
    await (await send(app(), key, body(), 'alice')).json();
    const bob = await send(app(), key, body(), 'bob');
    expect(bob.status).toBe(200);
    expect(bob.headers.get('idempotent-replayed')).toBeNull();
    expect(fake.requests).toHaveLength(2);
  });

  it('replays a failure as the same error, without a second model call', async () => {
    fake.script({ kind: 'status', status: 400 });
    const key = freshKey();
    const first = await send(app(), key, body());
    expect(first.status).toBe(502);
    const again = await send(app(), key, body());
    expect(again.status).toBe(502);
    expect((await again.json()).code).toBe('UPSTREAM_BAD_REQUEST');
    expect(fake.requests).toHaveLength(1);
  });

  it('gives a stream retry the whole answer as events', async () => {
    fake.script({ kind: 'text', content: 'streamed once', chunkSize: 3 });
    const key = freshKey();
    const first = await readSse(await send(app(), key, body('s', { stream: true })));
    const again = await readSse(await send(app(), key, body('s', { stream: true })));
    const text = (events: any[]) => events.filter((e) => e.type === 'content').map((e) => e.content).join('');
    expect(text(again.events)).toBe(text(first.events));
    expect(again.events.at(-1)).toMatchObject({ type: 'done', run_id: first.events[0].run_id });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('retries while the first request still runs', () => {
  it('a stream retry joins the running stream from its first event', async () => {
    fake.script({ kind: 'text', content: 'slow and single', chunkSize: 1, delayMs: 15 });
    const key = freshKey();
    const first = send(memory, key, body('x', { stream: true }));
    await fake.waitForRequests(1);
    const retry = await send(memory, key, body('x', { stream: true }));
    const [a, b] = await Promise.all([readSse(await first), readSse(retry)]);
    expect(b.events).toEqual(a.events);
    expect(fake.requests).toHaveLength(1);
  });

  it('a JSON retry of a running JSON request gets the same answer', async () => {
    fake.script({ kind: 'text', content: 'patience pays', chunkSize: 1, delayMs: 10 });
    const key = freshKey();
    const first = send(memory, key, body('y'));
    await fake.waitForRequests(1);
    const second = send(memory, key, body('y'));
    const [a, b] = await Promise.all([first, second]);
    expect(await b.json()).toEqual(await a.json());
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses a malformed key', async () => {
    const response = await send(memory, 'has spaces in it', body());
    expect(response.status).toBe(400);
    expect((await response.json()).detail).toMatch(/Idempotency-Key/);
  });
});
