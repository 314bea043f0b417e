// The typed client (packages/client) against a real server and the fake upstream: streaming with
// typed events, resuming a dropped stream by itself, cancel, sessions, accounts with refresh, errors.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChassisApiError, ChassisClient, memoryTokenStore, type StreamEvent } from '../packages/client/src/index.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startApp, type TestApp } from './support/app.js';
import { AuthClient, authEnv, uniqueEmail, PASSWORD } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';
import { recordingTool } from './support/approvals.js';

let fake: FakeUpstream;
let t: TestApp;
let sink: SmtpSink;
const tool = recordingTool('delete_file');

beforeAll(async () => {
  fake = await startFakeUpstream();
  sink = await startSmtpSink();
  t = await startApp({ ...authEnv(sink), OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: 'k', ENABLE_PERSISTENCE: 'true' }, { tools: [tool] });
});
afterAll(async () => {
  await t.close();
  await fake.close();
  await sink.close();
});
beforeEach(() => fake.reset());

const keyClient = (user = 'alice', extra: Partial<ConstructorParameters<typeof ChassisClient>[0]> = {}) => new ChassisClient({ baseUrl: t.url, apiKey: 'k', userId: user, ...extra });

/**
 * A fetch that lets the first event-stream response deliver `keep` frames and then fails its body
 * like a dropped connection; every other request goes through untouched.
 */
function droppingFetch(keep: number): { fetch: typeof fetch; dropped: () => boolean } {
  let dropped = false;
  const wrapped: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (dropped || !response.headers.get('content-type')?.startsWith('text/event-stream')) return response;
    dropped = true;
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let frames = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) return controller.close();
        const text = decoder.decode(value, { stream: true });
        const parts = text.split('\n\n');
        let out = '';
        for (const part of parts.slice(0, -1)) {
          if (frames >= keep) break;
          if (part.includes('data:')) frames++;
          out += `${part}\n\n`;
        }
        if (out !== '') controller.enqueue(new TextEncoder().encode(out));
        if (frames >= keep) {
          await reader.cancel();
          controller.error(new TypeError('network error (simulated drop)'));
        }
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return { fetch: wrapped, dropped: () => dropped };
}

describe('streaming', () => {
  it('yields typed events: run_started, tool call and result, content, done with usage; result() adds them up', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }] },
      { kind: 'text', content: 'The answer is **4**.', usage: { prompt_tokens: 12, completion_tokens: 6 } },
    );
    const client = keyClient();
    const seen: StreamEvent[] = [];
    const result = await client.stream({ message: 'What is 2+2?' }).result((event) => seen.push(event));
    expect(seen.map((event) => event.type)).toEqual(['run_started', 'tool_call', 'tool_result', ...Array(seen.length - 4).fill('content'), 'done']);
    expect(result.content).toBe('The answer is **4**.');
    expect(result.toolCalls).toEqual([{ id: expect.any(String), name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}', result: '4' }]);
    expect(result.usage.total_tokens).toBeGreaterThan(0);
    expect(result.sessionId).toMatch(/^[\w-]{22}$/);
    // The session holds the turn the stream reported.
    const page = await client.messages(result.sessionId!);
    expect(page.messages.at(-1)).toMatchObject({ role: 'assistant', content: 'The answer is **4**.' });
  });

  it('resumes a dropped stream with Last-Event-ID by itself: every event once, in order', async () => {
    const words = Array.from({ length: 30 }, (_, index) => `w${index} `);
    fake.script({ kind: 'text', content: words.join(''), chunks: words, delayMs: 10 });
    const drop = droppingFetch(5);
    const client = keyClient('alice', { fetch: drop.fetch });
    const stream = client.stream({ message: 'count' });
    const result = await stream.result();
    expect(drop.dropped()).toBe(true);
    expect(stream.resumes).toBeGreaterThanOrEqual(1);
    expect(result.content).toBe(words.join(''));
    // The server's own record agrees: one run, completed.
    expect((await client.run(result.runId)).status).toBe('completed');
  });

  it('cancel() stops the run on the server; the stream ends with RUN_CANCELLED and the run says cancelled', async () => {
    fake.script({ kind: 'text', content: 'x'.repeat(400), chunkSize: 1, delayMs: 20 });
    const client = keyClient();
    const stream = client.stream({ message: 'long' });
    const types: string[] = [];
    let last: StreamEvent | undefined;
    for await (const event of stream) {
      types.push(event.type);
      last = event;
      if (types.filter((type) => type === 'content').length === 3) await stream.cancel();
    }
    expect(last).toMatchObject({ type: 'error', code: 'RUN_CANCELLED' });
    expect((await client.run(stream.runId!)).status).toBe('cancelled');
    expect(types.filter((type) => type === 'content').length).toBeLessThan(400);
  });

  it('resume(runId) replays a finished run from the start', async () => {
    fake.script({ kind: 'text', content: 'replayed answer' });
    const client = keyClient();
    const first = await client.stream({ message: 'hi' }).result();
    const again = await client.resume(first.runId).result();
    expect(again.content).toBe('replayed answer');
  });

  it('an error before the stream starts throws ChassisApiError with status and code', async () => {
    const client = keyClient();
    const stream = client.stream({ message: 'hi', session_id: 'no-such-session-0000000' });
    await expect(stream.result()).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const wrongKey = new ChassisClient({ baseUrl: t.url, apiKey: 'wrong' });
    await expect(wrongKey.listSessions()).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });
});

describe('sessions', () => {
  it('lists, reads, shares and deletes the caller’s sessions', async () => {
    fake.setDefault({ kind: 'text', content: 'ok' });
    const client = keyClient(`owner-${Date.now()}`);
    const made = await client.complete({ message: 'first' });
    const list = await client.listSessions();
    expect(list.sessions.map((session) => session.session_id)).toContain(made.session_id);
    const shared = await client.setSessionAccess(made.session_id!, { is_public: true, whitelist: ['bob'] });
    expect(shared).toMatchObject({ is_public: true, whitelist: ['bob'] });
    expect((await client.getSession(made.session_id!)).access).toMatchObject({ is_public: true });
    await client.deleteSession(made.session_id!);
    await expect(client.getSession(made.session_id!)).rejects.toMatchObject({ status: 404 });
  });

  it('listAgents() lists the server’s agents (AGENTS_DIR defaults to the repository’s examples)', async () => {
    expect((await keyClient().listAgents()).map((agent) => agent.name)).toContain('calculator');
  });

  it('approvals: the stream shows approval_required, decideApproval() lets the run go on, listApprovals() records it', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ name: 'delete_file', arguments: '{"path":"/tmp/a"}' }] }, { kind: 'text', content: 'Gone.' });
    const client = keyClient();
    const stream = client.stream({ message: 'delete /tmp/a' });
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'approval_required') await client.decideApproval(stream.runId!, event.approval_id, 'approve');
    }
    expect(types).toEqual(expect.arrayContaining(['approval_required', 'approval_decided', 'tool_result', 'done']));
    expect(tool.calls).toEqual([{ path: '/tmp/a' }]);
    expect((await client.listApprovals(stream.runId!)).approvals).toMatchObject([{ name: 'delete_file', status: 'approved' }]);
  });
});

describe('accounts', () => {
  it('register, verify, login; a due access token is refreshed before the call; a refused one after a 401', async () => {
    const email = uniqueEmail('client');
    const store = memoryTokenStore();
    const changes: Array<unknown> = [];
    const client = new ChassisClient({ baseUrl: t.url, tokens: store, onTokensChange: (tokens) => changes.push(tokens), fetch: (input, init) => fetch(input, init) });
    const auth = new AuthClient(t, sink);
    await client.register(email, PASSWORD);
    await client.verifyEmail(email, await auth.verificationCode(email));
    await client.login(email, PASSWORD);
    const me = await client.me();
    expect(me.email).toBe(email);

    // Due: expiring within the margin → refreshed before the request.
    const before = store.get()!;
    store.set({ ...before, expires_at: Date.now() + 1000 });
    expect((await client.me()).id).toBe(me.id);
    expect(store.get()!.refresh_token).not.toBe(before.refresh_token);

    // Not due but refused by the server (a forged token) → refreshed after the 401 and retried once.
    const current = store.get()!;
    store.set({ ...current, access_token: 'not-a-jwt' });
    expect((await client.me()).id).toBe(me.id);
    expect(store.get()!.access_token).not.toBe('not-a-jwt');

    // Logout ends the login on the server too: the old refresh token no longer works.
    const last = store.get()!;
    await client.logout();
    expect(store.get()).toBeNull();
    const reuse = await fetch(`${t.url}/api/v1/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: last.refresh_token }) });
    expect(reuse.status).toBe(401);
    expect(changes.at(-1)).toBeNull();
  });

  it('a refresh the server refuses signs the client out', async () => {
    const store = memoryTokenStore({ access_token: 'x', refresh_token: 'rt_forged', expires_at: 0 });
    const client = new ChassisClient({ baseUrl: t.url, tokens: store });
    await expect(client.me()).rejects.toMatchObject({ status: 401 });
    expect(store.get()).toBeNull();
  });
});

describe('errors', () => {
  it('a rate limit carries its retry time', async () => {
    const limited = await startApp({ OPENAI_BASE_URL: fake.url, ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '1' });
    try {
      const client = new ChassisClient({ baseUrl: limited.url });
      await client.listTools();
      const error = await client.listTools().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ChassisApiError);
      expect(error).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
      expect((error as ChassisApiError).retryAfterSeconds).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});
