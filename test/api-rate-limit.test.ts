import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, json } from './support/accounts.js';
import { startApp, type TestApp } from './support/app.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';
import { REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';

const tools = (app: TestApp, headers: Record<string, string> = {}) => fetch(`${app.url}/api/v1/tools`, { headers });

describe('general limit API_RATE_LIMIT_PER_MINUTE (ENABLE_RATE_LIMITING)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({ ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '5' });
  });
  afterAll(() => app.close());

  it('allows exactly the limit per identity, then 429 with Retry-After and a detail', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await tools(app, { 'x-user-id': 'alice' })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await tools(app, { 'x-user-id': 'alice' });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await json(limited)).detail).toMatch(/API_RATE_LIMIT_PER_MINUTE/);
    expect((await tools(app, { 'x-user-id': 'bob' })).status).toBe(200); // another identity has its own count
  });

  it('counts anonymous callers by IP, and never limits /health or the OpenAPI document', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await tools(app)).status);
    expect(statuses.slice(0, 5).every((status) => status === 200)).toBe(true);
    expect(statuses[5]).toBe(429);
    for (let i = 0; i < 8; i++) {
      expect((await fetch(`${app.url}/api/v1/health`)).status).toBe(200);
      expect((await fetch(`${app.url}/api/v1/openapi.json`)).status).toBe(200);
    }
  });

  it('is off with ENABLE_RATE_LIMITING=false', async () => {
    const off = await startApp({ API_RATE_LIMIT_PER_MINUTE: '1', ENABLE_RATE_LIMITING: 'false' });
    try {
      for (let i = 0; i < 4; i++) expect((await tools(off)).status).toBe(200);
    } finally {
      await off.close();
    }
  });

  it('counts bad credentials against the client IP (API key mode)', async () => {
    const keyed = await startApp({ ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '3', CHASSIS_API_KEY: 'the-right-key' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await tools(keyed, { 'x-api-key': `wrong-${i}` })).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect((await tools(keyed, { 'x-api-key': 'the-right-key' })).status).toBe(200); // the key is another identity
    } finally {
      await keyed.close();
    }
  });
});

describe('general limit with user accounts', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(() => sink.close());

  it('counts a logged-in user by user id, whatever IP the requests come from', async () => {
    const app = await startApp(authEnv(sink, { ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '8' }));
    try {
      const setup = new AuthClient(app, sink);
      const { email } = await setup.verifiedUser(); // register + verify: 2 requests from setup's IP
      const tokens = await setup.login(email); // 3
      const statuses: number[] = [];
      for (let i = 0; i < 9; i++) statuses.push((await new AuthClient(app, sink).me(tokens.access_token)).status);
      expect(statuses.slice(0, 8).every((status) => status === 200)).toBe(true);
      expect(statuses[8]).toBe(429);
    } finally {
      await app.close();
    }
  });
});

describe('general limit shared through Redis (#19)', async () => {
  const { redis } = await storesAvailable();

  it.skipIf(!redis)('two instances on one Redis: 100 alternating requests → exactly 60 allowed', async () => {
    const prefix = uniqueRedisPrefix();
    const env = { ENABLE_RATE_LIMITING: 'true', REDIS_URL: REDIS_TEST_URL, REDIS_KEY_PREFIX: prefix, API_RATE_LIMIT_PER_MINUTE: '60' };
    const first = await startApp(env);
    const second = await startApp(env);
    try {
      const identity = { 'x-user-id': `user-${prefix}` };
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) statuses.push((await tools(i % 2 === 0 ? first : second, identity)).status);
      expect(statuses.filter((status) => status !== 429)).toHaveLength(60);
      expect(statuses.filter((status) => status === 429)).toHaveLength(40);
      expect(statuses.slice(0, 60).every((status) => status === 200)).toBe(true);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
