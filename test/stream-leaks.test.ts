import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { HEAP_PROBE_ARGS, retainedBytes, spawnServer, type ServerProcess } from './support/server-process.js';

let fake: FakeUpstream;
let server: ServerProcess;

beforeAll(async () => {
  fake = await startFakeUpstream();
  fake.setDefault({ kind: 'text', content: 'y'.repeat(200), chunkSize: 1, delayMs: 10 });
  server = await spawnServer({ ENABLE_PERSISTENCE: 'false', OPENAI_BASE_URL: fake.url, LOG_LEVEL: 'warn' }, undefined, HEAP_PROBE_ARGS).ready;
});
afterAll(async () => {
  await server.kill();
  await fake.close();
});

/**
 * Open descriptors of the server, not counting its pooled keep-alive connections to the provider:
 * that pool is bounded by design and its size depends on timing, not on leaks.
 */
function openFds(): number {
  const upstreamPort = new URL(fake.url).port;
  const pooled = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && parseInt(fields[2]!.split(':')[1]!, 16) === Number(upstreamPort)) pooled.add(fields[9]!);
    }
  }
  const dir = `/proc/${server.child.pid}/fd`;
  return readdirSync(dir).filter((fd) => {
    const target = safeReadlink(`${dir}/${fd}`);
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    return inode === undefined || !pooled.has(inode);
  }).length;
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

async function abandonedStream(): Promise<void> {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/api/v1/agent/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'go' }], stream: true }),
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  await reader.read();
  controller.abort();
  await reader.closed.catch(() => undefined);
}

it('leaks no sockets or memory when 200 streams are abandoned mid-answer', async () => {
  // Warm up at the same concurrency, so the pool of keep-alive upstream connections is already full.
  await Promise.all(Array.from({ length: 20 }, abandonedStream));
  await waitFor(() => fake.requests.length === 20 && fake.requests.every((request) => request.closedEarly));
  const baselineFds = openFds();
  const baselineBytes = await retainedBytes(server);
  for (let batch = 0; batch < 10; batch++) await Promise.all(Array.from({ length: 20 }, abandonedStream));
  // Every upstream call was cancelled: the provider saw each connection close early.
  await waitFor(() => fake.requests.length === 220 && fake.requests.every((request) => request.closedEarly));
  await waitFor(() => openFds() <= baselineFds + 5);
  expect(openFds()).toBeLessThanOrEqual(baselineFds + 5);
  // 200 runs stay kept for replay (a few KB each); a leaked socket, buffer or stream per run would show.
  expect((await retainedBytes(server)) - baselineBytes).toBeLessThan(2 * 1024 * 1024);
  expect(server.output()).not.toMatch(/ERR_STREAM_WRITE_AFTER_END|unhandled|Error/);
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
}
