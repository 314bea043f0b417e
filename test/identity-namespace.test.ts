import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { AuthClient, authEnv, post, startApp, type TestApp } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

// Issue 12 #7, decided: with accounts and CHASSIS_API_KEY both on, the API key is a server-to-server
// credential that is fully trusted to act as ANY user: `X-API-Key` + `X-User-ID: <id>` is that user,
// whether the id is one the backend made up or an account's id. One namespace, as in the Python
// version; README "Authentication" says so. Tokens never get that power: a token is its own user.

let fake: FakeUpstream;
let sink: SmtpSink;
let t: TestApp;
let client: AuthClient;
const KEY = 'backend-key-0123456789';
beforeAll(async () => {
  fake = await startFakeUpstream();
  sink = await startSmtpSink();
  t = await startApp(authEnv(sink, { CHASSIS_API_KEY: KEY, ENABLE_PERSISTENCE: 'true', OPENAI_BASE_URL: fake.url }));
  client = new AuthClient(t, sink);
});
afterAll(async () => {
  await t.close();
  await sink.close();
  await fake.close();
});

describe('API key and accounts share one identity namespace', () => {
  it("the API key with X-User-ID = an account's id acts as that account on its sessions", async () => {
    const { email, userId } = await client.verifiedUser();
    const { access_token: token } = await client.login(email);
    fake.script({ kind: 'text', content: 'mine' });
    const created = await (await post(`${t.url}/api/v1/agent/completion`, { message: 'hi' }, { authorization: `Bearer ${token}` })).json();
    const asKey = { 'x-api-key': KEY, 'x-user-id': userId };
    const read = await fetch(`${t.url}/api/v1/agent/session/${created.session_id}`, { headers: asKey });
    expect(read.status).toBe(200);
    expect((await read.json()).access.owner_id).toBe(userId);
    // Without X-User-ID the key is its own identity, not the account.
    const keyOnly = await fetch(`${t.url}/api/v1/agent/session/${created.session_id}`, { headers: { 'x-api-key': KEY } });
    expect(keyOnly.status).toBe(403);
    const deleted = await fetch(`${t.url}/api/v1/agent/session/${created.session_id}`, { method: 'DELETE', headers: asKey });
    expect(deleted.status).toBe(200);
  });

  it('a token never acts as anyone else: X-User-ID is ignored with a Bearer token', async () => {
    const owner = await client.verifiedUser();
    const other = await client.verifiedUser();
    fake.script({ kind: 'text', content: 'x' });
    const created = await (await post(`${t.url}/api/v1/agent/completion`, { message: 'hi' }, { 'x-api-key': KEY, 'x-user-id': owner.userId })).json();
    const { access_token: otherToken } = await client.login(other.email);
    const read = await fetch(`${t.url}/api/v1/agent/session/${created.session_id}`, { headers: { authorization: `Bearer ${otherToken}`, 'x-user-id': owner.userId } });
    expect(read.status).toBe(403);
    const { access_token: ownerToken } = await client.login(owner.email);
    expect((await fetch(`${t.url}/api/v1/agent/session/${created.session_id}`, { headers: { authorization: `Bearer ${ownerToken}` } })).status).toBe(200);
  });
});
