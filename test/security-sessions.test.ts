// Issue 11 (security review), sessions: a collaborator's settings stay on their own turn (4); the
// session owner sees and cancels runs on their session; a collaborator removed mid-run gets no turn
// written. Through HTTP against a real app, with the fake upstream recording what the model received.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sendJson, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
let app: TestApp;
const KEY = 'k';

beforeAll(async () => {
  fake = await startFakeUpstream();
  app = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: KEY }));
});
afterAll(async () => {
  await app.close();
  await fake.close();
});

const as = (userId: string): Record<string, string> => ({ 'x-api-key': KEY, 'x-user-id': userId });
const completion = (body: Record<string, unknown>, user: string) => post(`${app.url}/api/v1/agent/completion`, body, as(user));

/** alice's session, with her system prompt, model and metadata, shared with bob (whitelist) or everyone (public). */
async function sharedSession(share: { whitelist: string[] } | { is_public: true }): Promise<string> {
  fake.setDefault({ kind: 'text', content: 'ok' });
  const created = await completion({ message: 'hello', system_prompt: 'ALICE PROMPT', model: 'alice-model', metadata: { owner: 'alice' } }, 'alice');
  expect(created.status).toBe(200);
  const sessionId = (await json(created)).session_id;
  expect((await sendJson(`${app.url}/api/v1/agent/session/${sessionId}/access`, 'PATCH', as('alice'), share)).status).toBe(200);
  return sessionId;
}

const lastRequest = () => fake.requests.at(-1)!.body;

describe("item 4: a collaborator's overrides apply to their own turn only", () => {
  for (const share of [{ whitelist: ['bob'] }, { is_public: true as const }]) {
    it(`${'whitelist' in share ? 'whitelisted' : 'public'}: bob's system_prompt/model/metadata are used for his turn, never stored; alice's next turn runs on her settings`, async () => {
      const sessionId = await sharedSession(share);
      const bob = await completion({ message: 'from bob', session_id: sessionId, system_prompt: 'BOB PROMPT', model: 'bob-model', metadata: { owner: 'bob' } }, 'bob');
      expect(bob.status).toBe(200);
      expect(lastRequest().model).toBe('bob-model');
      expect(lastRequest().messages[0]).toEqual({ role: 'system', content: 'BOB PROMPT' });

      const view = await json(await sendJson(`${app.url}/api/v1/agent/session/${sessionId}`, 'GET', as('alice')));
      expect(view).toMatchObject({ model: 'alice-model', metadata: { owner: 'alice' } });

      expect((await completion({ message: 'alice again', session_id: sessionId }, 'alice')).status).toBe(200);
      expect(lastRequest().model).toBe('alice-model');
      expect(lastRequest().messages[0]).toEqual({ role: 'system', content: 'ALICE PROMPT' });
      // bob's turn itself is part of the conversation
      expect(JSON.stringify(lastRequest().messages)).toContain('from bob');
    });
  }

  it('the owner still changes the settings with a continue', async () => {
    const sessionId = await sharedSession({ whitelist: ['bob'] });
    expect((await completion({ message: 'new settings', session_id: sessionId, system_prompt: 'ALICE TWO', model: 'alice-model-2', metadata: { v: 2 } }, 'alice')).status).toBe(200);
    expect((await completion({ message: 'then', session_id: sessionId }, 'bob')).status).toBe(200);
    expect(lastRequest().model).toBe('alice-model-2');
    expect(lastRequest().messages[0]).toEqual({ role: 'system', content: 'ALICE TWO' });
    const view = await json(await sendJson(`${app.url}/api/v1/agent/session/${sessionId}`, 'GET', as('alice')));
    expect(view).toMatchObject({ model: 'alice-model-2', metadata: { v: 2 } });
  });
});

describe("runs on the owner's session", () => {
  it("the session owner sees and cancels a collaborator's run on their session; a stranger still cannot", async () => {
    const sessionId = await sharedSession({ whitelist: ['bob'] });
    fake.script({ kind: 'text', content: 'x'.repeat(200), chunkSize: 1, delayMs: 30 });
    const bobRun = await completion({ message: 'long one', session_id: sessionId, stream: true }, 'bob');
    const runId = bobRun.headers.get('x-run-id')!;
    const reading = bobRun.text();

    const busy = await completion({ message: 'me too', session_id: sessionId }, 'alice');
    expect(busy.status).toBe(409);
    expect((await json(busy)).run_id).toBe(runId);

    expect((await sendJson(`${app.url}/api/v1/agent/runs/${runId}`, 'GET', as('mallory'))).status).toBe(403);
    expect((await post(`${app.url}/api/v1/agent/runs/${runId}/cancel`, {}, as('mallory'))).status).toBe(403);
    const status = await sendJson(`${app.url}/api/v1/agent/runs/${runId}`, 'GET', as('alice'));
    expect(status.status).toBe(200);
    expect(await json(status)).toMatchObject({ run_id: runId, status: 'running', session_id: sessionId });
    const cancelled = await post(`${app.url}/api/v1/agent/runs/${runId}/cancel`, {}, as('alice'));
    expect(cancelled.status).toBe(200);
    expect(await json(cancelled)).toMatchObject({ status: 'cancelled' });
    await reading;
  });
});

describe('a collaborator removed mid-run', () => {
  it("gets no turn written into the session once the owner takes their access away", async () => {
    const sessionId = await sharedSession({ whitelist: ['bob'] });
    const before = (await json(await sendJson(`${app.url}/api/v1/agent/session/${sessionId}`, 'GET', as('alice')))).message_count;
    fake.script({ kind: 'text', content: 'y'.repeat(40), chunkSize: 1, delayMs: 25 });
    const bobRun = completion({ message: 'secret plan', session_id: sessionId }, 'bob');
    await fake.waitForRequests(fake.requests.length + 1);
    expect((await sendJson(`${app.url}/api/v1/agent/session/${sessionId}/access`, 'PATCH', as('alice'), { whitelist: [] })).status).toBe(200);
    const answer = await bobRun;
    expect(answer.status).toBe(403);
    expect((await json(answer)).detail).toMatch(/removed during the run/);
    const after = await json(await sendJson(`${app.url}/api/v1/agent/session/${sessionId}`, 'GET', as('alice')));
    expect(after.message_count).toBe(before);
    const messages = await json(await sendJson(`${app.url}/api/v1/agent/session/${sessionId}/messages`, 'GET', as('alice')));
    expect(JSON.stringify(messages)).not.toContain('secret plan');
    // the session is free again for its owner
    fake.setDefault({ kind: 'text', content: 'ok' });
    expect((await completion({ message: 'mine', session_id: sessionId }, 'alice')).status).toBe(200);
  });
});
