import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, readStreamUntil } from './support/app.js';
import { spawnServer as spawnMain } from './support/server-process.js';

/** Persistence is off unless a test turns it on. */
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

  it('stops a session run at the end of the grace period and leaves the session valid for the next start (#95, #78)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shutdown-session-'));
    const env = { ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${join(dir, 'chassis.db')}`, OPENAI_BASE_URL: fake.url, SHUTDOWN_GRACE_SECONDS: '1', HOME: process.env.HOME ?? '' };
    try {
      const first = await spawnServer(env).ready;
      fake.script({ kind: 'text', content: 'one' }, { kind: 'text', content: 'y'.repeat(200), chunkSize: 1, delayMs: 50 });
      const opened = await post(`${first.url}/api/v1/agent/completion`, { message: 'first' });
      const sessionId = (await opened.json()).session_id;
      // A run of ~10 s on the session, stopped by SIGTERM once it is streaming.
      const slow = await post(`${first.url}/api/v1/agent/completion`, { session_id: sessionId, message: 'second', stream: true });
      const reader = slow.body!.getReader();
      let text = await readStreamUntil(reader, (seen) => seen.includes('"type":"content"'));
      const started = Date.now();
      first.child.kill('SIGTERM');
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
      const terminal = text.split('\n\n').filter((frame) => /"type":"(done|error)"/.test(frame));
      expect(terminal).toHaveLength(1);
      expect(terminal[0]).toContain('"code":"SHUTTING_DOWN"');
      expect(await first.exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(3_000);

      // The stopped turn persisted nothing: the next start continues from the first turn.
      const second = await spawnServer(env).ready;
      try {
        expect((await (await fetch(`${second.url}/api/v1/agent/session/${sessionId}`)).json()).message_count).toBe(2);
        fake.reset();
        fake.script({ kind: 'text', content: 'three' });
        const next = await post(`${second.url}/api/v1/agent/completion`, { session_id: sessionId, message: 'third' });
        expect(next.status).toBe(200);
        const sent = fake.requests[0]!.body.messages.map((m: { role: string; content: string }) => `${m.role}:${m.content}`);
        expect(sent).toEqual(['user:first', 'assistant:one', 'user:third']);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits at once on a second signal, without waiting for the grace period', async () => {
    fake.setDefault({ kind: 'text', content: 'z'.repeat(100), chunkSize: 1, delayMs: 100 });
    const server = await spawnServer({ OPENAI_BASE_URL: fake.url, SHUTDOWN_GRACE_SECONDS: '20' }).ready;
    const inFlight = await startStream(server.url);
    server.child.kill('SIGTERM');
    let health = 200;
    while (health === 200) health = (await fetch(`${server.url}/health`)).status;
    const started = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_000);
    await inFlight.body?.cancel().catch(() => undefined);
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
