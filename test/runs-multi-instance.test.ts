import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, readStreamUntil, startApp, type TestApp } from './support/app.js';
import { createPgSchema, REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';

const stores = await storesAvailable();

describe.skipIf(!stores.pg || !stores.redis)('runs across two instances on PostgreSQL + Redis', () => {
  let fake: FakeUpstream;
  let a: TestApp;
  let b: TestApp;
  let dropSchema: () => Promise<void>;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const schema = await createPgSchema();
    dropSchema = schema.drop;
    const env = {
      OPENAI_BASE_URL: fake.url,
      ENABLE_PERSISTENCE: 'true',
      DATABASE_URL: schema.url,
      REDIS_URL: REDIS_TEST_URL,
      REDIS_KEY_PREFIX: uniqueRedisPrefix(),
    };
    a = await startApp(env);
    b = await startApp(env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropSchema?.();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  const streamOn = (app: TestApp, extra: Record<string, string> = {}) =>
    post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true }, extra);

  async function firstEvents(response: Response, count: number) {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const text = await readStreamUntil(reader, (seen) => (seen.match(/\n\n/g) ?? []).length >= count, decoder);
    return { reader, text, decoder };
  }

  it('shows, replays and follows on B a run that runs on A', async () => {
    const words = Array.from({ length: 20 }, (_, i) => `t${i} `);
    fake.script({ kind: 'text', content: words.join(''), chunks: words, delayMs: 20 });
    const onA = await streamOn(a);
    const runId = onA.headers.get('x-run-id')!;
    const { reader } = await firstEvents(onA, 4);
    const status = await (await fetch(`${b.url}/api/v1/agent/runs/${runId}`)).json();
    expect(status).toMatchObject({ run_id: runId, status: 'running' });
    const resumed = await readSse(await fetch(`${b.url}/api/v1/agent/runs/${runId}/stream`, { headers: { 'Last-Event-ID': `${runId}:3` } }));
    const ids = [...resumed.raw.matchAll(/^id: .+:(\d+)$/gm)].map((match) => Number(match[1]));
    expect(ids[0]).toBe(4);
    expect(ids).toEqual(ids.map((_, index) => 4 + index));
    expect(resumed.events.at(-1)).toMatchObject({ type: 'done', run_id: runId });
    const joined = resumed.events.filter((e) => e.type === 'content').map((e) => e.content).join('');
    expect(words.join('').endsWith(joined)).toBe(true);
    while (!(await reader.read()).done);
    const finished = await (await fetch(`${b.url}/api/v1/agent/runs/${runId}`)).json();
    expect(finished).toMatchObject({ status: 'completed', stop_reason: 'stop' });
  });

  it('cancels through B a run on A', async () => {
    fake.script({ kind: 'text', content: 'z'.repeat(300), chunkSize: 1, delayMs: 20 });
    const onA = await streamOn(a);
    const runId = onA.headers.get('x-run-id')!;
    const { reader, decoder } = await firstEvents(onA, 3);
    const cancelled = await fetch(`${b.url}/api/v1/agent/runs/${runId}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(200);
    expect((await cancelled.json()).status).toBe('cancelled');
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
    }
    expect(rest).toContain('"code":"RUN_CANCELLED"');
    expect(fake.requests[0]!.closedEarly).toBe(true);
  });

  it('replays an idempotent retry sent to the other instance without a second model call', async () => {
    fake.script({ kind: 'text', content: 'exactly once' });
    const headers = { 'Idempotency-Key': `multi-${Date.now()}` };
    const body = { messages: [{ role: 'user', content: 'once' }] };
    const first = await (await post(`${a.url}/api/v1/agent/completion`, body, headers)).json();
    const second = await post(`${b.url}/api/v1/agent/completion`, body, headers);
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual(first);
    expect(fake.requests).toHaveLength(1);
  });
});
