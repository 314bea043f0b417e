import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Pool } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';

// A load baseline (SECURITY-RELIABILITY #98), scaled to stay quick: 20 keep-alive connections of
// non-stream completions against an instant fake. Speed is measured by `npm run bench`, not here;
// this checks that load produces no errors and no memory growth.
let fake: FakeUpstream;
let server: ServerProcess;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'steady answer under load' });
  server = await spawnServer({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'warn' }).ready;
});
afterAll(async () => {
  await server.kill();
  await fake.close();
});

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) / 1024;

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
  // Warm up as long as the measured round: V8 grows its heap to a steady size under this load first.
  await load(3, 20);
  const warm = rssMb();
  const { statuses, errors } = await load(3, 20);
  expect(errors).toBe(0);
  expect([...statuses.keys()]).toEqual([200]);
  expect(statuses.get(200)!).toBeGreaterThan(100);
  expect(rssMb() - warm).toBeLessThan(50);
});
