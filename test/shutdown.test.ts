import { once } from 'node:events';
import { request as httpRequest, Agent } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { readSse } from './support/app.js';
import { spawnServer as spawnMain } from './support/server-process.js';

/** Persistence is off in these tests: nothing here needs a store. */
const spawnServer = (env: Record<string, string>) => spawnMain({ ENABLE_PERSISTENCE: 'false', ...env });

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});

const streamBody = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true });
const startStream = (url: string) =>
  fetch(`${url}/api/v1/agent/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody });

describe('graceful shutdown (the real entry point as a child process)', () => {
  it('on SIGTERM refuses new work with 503, lets a running stream finish with done, and exits 0', async () => {
    fake.setDefault({ kind: 'text', content: 'a b c d e f g h i j', chunkSize: 2, delayMs: 60 });
    const server = await spawnServer({ OPENAI_BASE_URL: fake.url, SHUTDOWN_GRACE_SECONDS: '10' }).ready;
    const inFlight = await startStream(server.url);
    server.child.kill('SIGTERM');
    // Draining shows first on /health (503), then new work is refused while the stream goes on.
    let health = 200;
    while (health === 200) health = (await fetch(`${server.url}/health`)).status;
    expect(health).toBe(503);
    const refused = await fetch(`${server.url}/api/v1/agent/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).code).toBe('SHUTTING_DOWN');
    const { events } = await readSse(inFlight);
    expect(events.at(-1).type).toBe('done');
    expect(events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe('a b c d e f g h i j');
    expect(await server.exited).toBe(0);
  });

  it('after the grace period stops what still runs with one error event and exits 0', async () => {
    fake.setDefault({ kind: 'text', content: 'x'.repeat(100), chunkSize: 1, delayMs: 100 });
    const server = await spawnServer({ OPENAI_BASE_URL: fake.url, SHUTDOWN_GRACE_SECONDS: '1' }).ready;
    const inFlight = await startStream(server.url);
    const started = Date.now();
    server.child.kill('SIGTERM');
    const { events } = await readSse(inFlight);
    const terminal = events.filter((e) => e.type === 'done' || e.type === 'error');
    expect(terminal).toEqual([expect.objectContaining({ type: 'error', code: 'SHUTTING_DOWN' })]);
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('does not wait for idle keep-alive connections', async () => {
    const server = await spawnServer({ OPENAI_BASE_URL: fake.url }).ready;
    const agent = new Agent({ keepAlive: true });
    const { port } = new URL(server.url);
    await new Promise<void>((resolve) => {
      httpRequest({ host: '127.0.0.1', port, path: '/health', agent }, (response) => {
        response.resume();
        response.on('end', resolve);
      }).end();
    });
    const started = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(1_000);
    agent.destroy();
  });

  it('does not wait for a connection that never sent a request (Node would hold it for its 60 s headers timeout)', async () => {
    const server = await spawnServer({ OPENAI_BASE_URL: fake.url }).ready;
    const { port } = new URL(server.url);
    const silent = connect(Number(port), '127.0.0.1');
    await once(silent, 'connect');
    const closedByServer = once(silent, 'close');
    const started = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(1_000);
    await closedByServer;
  });
});

describe('configuration errors stop the start', () => {
  it('refuses ENABLE_USER_AUTH with a short JWT_SECRET_KEY, naming the variable but not its value', async () => {
    const secret = 'short-secret-of-31-characters!!';
    expect(secret).toHaveLength(31);
    const server = spawnServer({ ENABLE_USER_AUTH: 'true', JWT_SECRET_KEY: secret });
    server.ready.catch(() => undefined);
    const code = await server.exited;
    expect(code).not.toBe(0);
    expect(server.output()).toContain('JWT_SECRET_KEY');
    expect(server.output()).not.toContain(secret);
  });

  it('names a variable with a bad value', async () => {
    const server = spawnServer({ MAX_AGENT_STEPS: 'many' });
    server.ready.catch(() => undefined);
    expect(await server.exited).not.toBe(0);
    expect(server.output()).toContain('MAX_AGENT_STEPS');
  });
});
