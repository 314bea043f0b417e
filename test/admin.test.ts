import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, startApp, uniqueEmail, type TestApp } from './support/accounts.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

const KEY = 'operator-api-key-0123456789';
let sink: SmtpSink;
let app: TestApp;
beforeAll(async () => {
  sink = await startSmtpSink();
  app = await startApp(authEnv(sink, { CHASSIS_API_KEY: KEY }));
});
afterAll(async () => {
  await app.close();
  await sink.close();
});

/** A POST without a body, as an operator's `curl -X POST` sends it. */
const postEmpty = (url: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers });
const admin = (user: string, action: 'disable' | 'enable', headers: Record<string, string> = { 'x-api-key': KEY }) =>
  postEmpty(`${app.url}/api/v1/admin/users/${encodeURIComponent(user)}/${action}`, headers);

describe('POST /api/v1/admin/users/{user}/disable and /enable', () => {
  it('ends every login of a disabled user at once, and lets them sign in again once re-enabled', async () => {
    const c = new AuthClient(app, sink);
    const { email, userId } = await c.verifiedUser();
    const first = await c.login(email);
    const second = await c.login(email);
    expect((await c.me(first.access_token)).status).toBe(200);

    const disabled = await admin(userId, 'disable');
    expect(disabled.status).toBe(200);
    expect(await disabled.json()).toEqual({ user_id: userId, email, disabled: true, sessions_ended: 2 });
    // The access token issued before is refused on its next request; refresh and login too.
    expect((await c.me(first.access_token)).status).toBe(401);
    expect((await c.post('/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
    expect((await c.post('/login', { email, password: 'correct-horse-battery-7' })).status).toBe(403);

    const enabled = await admin(email.toUpperCase(), 'enable'); // by email, any case
    expect(await enabled.json()).toEqual({ user_id: userId, email, disabled: false, sessions_ended: 0 });
    // The old logins stay ended; a new one works.
    expect((await c.post('/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
    const again = await c.login(email);
    expect((await c.me(again.access_token)).status).toBe(200);
  });

  it('answers only the API key: 401 without it, 403 for a user bearer token, 404 for an unknown user', async () => {
    const c = new AuthClient(app, sink);
    const { email, userId } = await c.verifiedUser(uniqueEmail('victim'));
    const tokens = await c.login(email);
    const missing = await admin(userId, 'disable', {});
    expect(missing.status).toBe(401);
    expect((await missing.json()).code).toBe('UNAUTHORIZED');
    expect((await admin(userId, 'disable', { 'x-api-key': 'wrong' })).status).toBe(401);
    const asUser = await admin(userId, 'disable', { authorization: `Bearer ${tokens.access_token}` });
    expect(asUser.status).toBe(403);
    expect((await asUser.json()).code).toBe('FORBIDDEN');
    expect((await c.me(tokens.access_token)).status).toBe(200); // nothing happened
    const unknown = await admin('no-such-user', 'disable');
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).code).toBe('NOT_FOUND');
  });

  it('answers 503 FEATURE_DISABLED when user accounts are off, and refuses a call without credentials when no API key is configured', async () => {
    const open = await startApp({ CHASSIS_API_KEY: KEY });
    try {
      const response = await postEmpty(`${open.url}/api/v1/admin/users/u1/disable`, { 'x-api-key': KEY });
      expect(response.status).toBe(503);
      expect((await response.json()).code).toBe('FEATURE_DISABLED');
    } finally {
      await open.close();
    }
    const keyless = await startApp(authEnv(sink));
    try {
      const response = await postEmpty(`${keyless.url}/api/v1/admin/users/u1/disable`);
      expect(response.status).toBe(401);
    } finally {
      await keyless.close();
    }
  });
});
