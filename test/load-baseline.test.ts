import { afterAll, beforeAll, expect, it } from 'vitest';
import { Pool } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { HEAP_PROBE_ARGS, retainedBytes, spawnServer, type ServerProcess } from './support/server-process.js';

// A load baseline (SECURITY-RELIABILITY #98), scaled to stay quick: 20 keep-alive connections of
// non-stream completions against an instant fake. Speed is measured by `npm run bench`, not here;
// this checks that load produces no errors and no memory growth: what the server still holds after
// a full GC (RSS would follow how far V8 grows its heap for the allocation rate, not leaks).
let fake: FakeUpstream;
let server: ServerProcess;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'steady answer under load' });
  server = await spawnServer({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'warn' }, undefined, HEAP_PROBE_ARGS).ready;
});
afterAll(async () => {
  await server.kill();
  await fake.close();
});

async function load(seconds: number, connections: number) {
  const pool = new Pool(server.url, { connections });
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
  const statuses = new Map<number, number>();
  let errors = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < deadline) {
        try {
          const response = await pool.request({ method: 'POST', path: '/api/v1/agent/completion', headers: { 'content-type': 'application/json' }, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
          const answer = (await response.body.json()) as { content?: string };
          const status = response.statusCode === 200 && answer.content !== 'steady answer under load' ? -1 : response.statusCode;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        } catch {
          errors++;
        }
      }
    }),
  );
  await pool.close();
  return { statuses, errors };
}

it('serves 20 connections of completions with no error, no 5xx and no memory growth', async () => {
  // The warm-up fills what is bounded by design: finished runs kept for replay (RUN_EVENTS_MAX_KEPT),
  // pooled upstream connections, compiled code.
  await load(3, 20);
  const warm = await retainedBytes(server);
  const { statuses, errors } = await load(3, 20);
  expect(errors).toBe(0);
  expect([...statuses.keys()]).toEqual([200]);
  // Thousands of runs here: a leak of 1 KB per run would hold several MB more.
  const served = statuses.get(200)!;
  expect(served).toBeGreaterThan(2_000);
  expect((await retainedBytes(server)) - warm).toBeLessThan(4 * 1024 * 1024);
});
