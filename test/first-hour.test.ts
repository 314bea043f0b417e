import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, startApp, type TestApp } from './support/app.js';
import { sessionEnv } from './support/sessions.js';

// Issue 12: what a new user's HTTP client does in the first hour.

let fake: FakeUpstream;
let t: TestApp;
beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp(sessionEnv(fake.url));
});
afterAll(async () => {
  await t.close();
  await fake.close();
});

describe('#2 an empty body with Content-Type: application/json', () => {
  it('is no body on DELETE /agent/session/{id} and POST /runs/{id}/cancel', async () => {
    fake.script({ kind: 'text', content: 'hello' });
    const opened = await (await post(`${t.url}/api/v1/agent/completion`, { message: 'hi' })).json();
    const json = { 'content-type': 'application/json' };
    const cancelled = await fetch(`${t.url}/api/v1/agent/runs/${opened.run_id}/cancel`, { method: 'POST', headers: json });
    expect(cancelled.status).toBe(200);
    expect((await cancelled.json()).status).toBe('completed');
    const deleted = await fetch(`${t.url}/api/v1/agent/session/${opened.session_id}`, { method: 'DELETE', headers: json });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ status: 'deleted', session_id: opened.session_id });
  });

  it('is still refused where a body is required, and a non-empty body is still parsed (and checked) on body-less routes', async () => {
    const empty = await fetch(`${t.url}/api/v1/agent/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' });
    expect(empty.status).toBe(400);
    expect((await empty.json()).detail).toMatch(/empty/);
    const poisoned = await fetch(`${t.url}/api/v1/agent/runs/nope/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"x":1}}' });
    expect(poisoned.status).toBe(400);
    const broken = await fetch(`${t.url}/api/v1/agent/runs/nope/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(broken.status).toBe(400);
  });
});

describe('#6 compatibility with the Python version', () => {
  it('/health carries user_auth_enabled next to status, stores and version', async () => {
    const health = await (await fetch(`${t.url}/health`)).json();
    expect(health).toEqual({ status: 'ok', stores: { db: true, redis: null }, version: expect.any(String), user_auth_enabled: false });
  });
});
