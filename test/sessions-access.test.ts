import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unauthorized } from '../src/errors.js';
import { MAX_ACCESS_LIST_ENTRIES } from '../src/sessions/index.js';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { json, sendJson, sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
let app: TestApp;

// Bearer tokens of the form "token-<user>" stand in for the accounts module's JWTs.
const bearerVerifier = async (token: string) => {
  const match = /^token-(\w+)$/.exec(token);
  if (!match) throw unauthorized('Invalid token');
  return { userId: match[1]!, via: 'jwt' as const };
};

beforeAll(async () => {
  fake = await startFakeUpstream();
  app = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: 'k' }), { bearerVerifier });
});
afterAll(async () => {
  await app.close();
  await fake.close();
});

const as = (userId: string): Record<string, string> => ({ 'x-api-key': 'k', 'x-user-id': userId });
const anonymous: Record<string, string> = {};

async function newSession(owner: string): Promise<string> {
  const response = await post(`${app.url}/api/v1/agent/completion`, { message: `hello from ${owner}` }, as(owner));
  expect(response.status).toBe(200);
  return (await json(response)).session_id;
}

const operations = {
  GET: (sid: string, headers: Record<string, string>) => sendJson(`${app.url}/api/v1/agent/session/${sid}`, 'GET', headers),
  PATCH: (sid: string, headers: Record<string, string>) => sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', headers, { is_public: false }),
  DELETE: (sid: string, headers: Record<string, string>) => sendJson(`${app.url}/api/v1/agent/session/${sid}`, 'DELETE', headers),
  continue: (sid: string, headers: Record<string, string>) => post(`${app.url}/api/v1/agent/completion`, { message: 'may I?', session_id: sid }, headers),
  messages: (sid: string, headers: Record<string, string>) => sendJson(`${app.url}/api/v1/agent/session/${sid}/messages`, 'GET', headers),
} as const;
type Operation = keyof typeof operations;

describe('object-level access on every session operation (#53)', () => {
  // alice owns the session and whitelists bob; carol owns one and is on its blacklist.
  const callers: Record<string, { session: 'alice' | 'carol'; headers: Record<string, string>; expected: Record<Operation, number> }> = {
    owner: { session: 'alice', headers: as('alice'), expected: { GET: 200, PATCH: 200, DELETE: 200, continue: 200, messages: 200 } },
    other: { session: 'alice', headers: as('mallory'), expected: { GET: 403, PATCH: 403, DELETE: 403, continue: 403, messages: 403 } },
    whitelisted: { session: 'alice', headers: as('bob'), expected: { GET: 200, PATCH: 403, DELETE: 403, continue: 200, messages: 200 } },
    'blacklisted owner': { session: 'carol', headers: as('carol'), expected: { GET: 403, PATCH: 403, DELETE: 403, continue: 403, messages: 403 } },
    anonymous: { session: 'alice', headers: anonymous, expected: { GET: 401, PATCH: 401, DELETE: 401, continue: 401, messages: 401 } },
  };
  const cases = Object.entries(callers).flatMap(([caller, spec]) =>
    (Object.keys(operations) as Operation[]).map((operation) => ({ caller, operation, ...spec, status: spec.expected[operation] })),
  );

  it.each(cases)('$caller → $operation → $status', async ({ session, headers, operation, status }) => {
    // A fresh session per case, so a DELETE cannot affect the next one.
    const sid = await newSession(session);
    const owner = as(session);
    if (session === 'alice') {
      expect((await sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', owner, { whitelist: ['bob'] })).status).toBe(200);
    } else {
      expect((await sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', owner, { blacklist: ['carol'] })).status).toBe(200);
    }
    const response = await operations[operation](sid, headers);
    expect(response.status).toBe(status);
    const body = await json(response);
    if (status >= 400) expect(typeof body.detail).toBe('string');
    // A refused operation changed nothing.
    if (status !== 200 && session === 'alice') {
      const view = await json(await operations.GET(sid, owner));
      expect(view).toMatchObject({ message_count: 2, access: { whitelist: ['bob'], blacklist: [] } });
    }
  });

  it('lets anyone read and continue a public session, but only the owner manage it', async () => {
    const sid = await newSession('alice');
    await sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', as('alice'), { is_public: true });
    expect((await operations.GET(sid, as('mallory'))).status).toBe(200);
    expect((await operations.continue(sid, as('mallory'))).status).toBe(200);
    expect((await operations.PATCH(sid, as('mallory'))).status).toBe(403);
    expect((await operations.DELETE(sid, as('mallory'))).status).toBe(403);
  });

  it('shows the access block to the owner only', async () => {
    const sid = await newSession('alice');
    await sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', as('alice'), { add_to_whitelist: ['bob'], add_to_blacklist: ['eve'] });
    expect((await json(await operations.GET(sid, as('alice')))).access).toEqual({ owner_id: 'alice', is_public: false, whitelist: ['bob'], blacklist: ['eve'] });
    const seenByBob = await json(await operations.GET(sid, as('bob')));
    expect(seenByBob.session_id).toBe(sid);
    expect(seenByBob).not.toHaveProperty('access');
  });

  it('ignores X-User-ID next to a bearer token: the token decides who you are (#52)', async () => {
    const sid = await newSession('bea');
    const asAnnClaimingBea = { authorization: 'Bearer token-ann', 'x-user-id': 'bea' };
    expect((await operations.GET(sid, asAnnClaimingBea)).status).toBe(403);
    expect((await operations.continue(sid, asAnnClaimingBea)).status).toBe(403);
    expect((await operations.GET(sid, { authorization: 'Bearer token-bea' })).status).toBe(200);
    expect((await operations.GET(sid, { authorization: 'Bearer forged' })).status).toBe(401);
  });

  it('deletes a session and everything in it', async () => {
    const sid = await newSession('alice');
    const response = await operations.DELETE(sid, as('alice'));
    expect(await json(response)).toEqual({ status: 'deleted', session_id: sid });
    expect((await operations.GET(sid, as('alice'))).status).toBe(404);
    expect((await fetch(`${app.url}/api/v1/agent/session/${sid}/messages`, { headers: as('alice') })).status).toBe(404);
    expect((await operations.continue(sid, as('alice'))).status).toBe(404);
    expect((await operations.DELETE(sid, as('alice'))).status).toBe(404);
  });
});

describe('PATCH /agent/session/{id}/access validation (#54)', () => {
  const patch = (sid: string, body: unknown) => sendJson(`${app.url}/api/v1/agent/session/${sid}/access`, 'PATCH', as('alice'), body);

  it.each([
    ['replace and add on one list', { whitelist: ['a'], add_to_whitelist: ['b'] }],
    ['replace and remove on one list', { blacklist: ['a'], remove_from_blacklist: ['b'] }],
    ['one user on both lists', { whitelist: ['x'], blacklist: ['x'] }],
    ['a user added to both lists', { add_to_whitelist: ['x'], add_to_blacklist: ['x'] }],
    ['an unknown field', { make_admin: true }],
    ['a list that is not an array', { whitelist: 'bob' }],
    ['a non-string user id', { whitelist: [42] }],
    ['an empty user id', { whitelist: [''] }],
    ['a control character in a user id', { whitelist: ['bo\u0000b'] }],
    ['is_public as a string', { is_public: 'true' }],
    [`${MAX_ACCESS_LIST_ENTRIES + 1} users`, { whitelist: Array.from({ length: MAX_ACCESS_LIST_ENTRIES + 1 }, (_, i) => `u${i}`) }],
  ])('rejects %s with 400 and changes nothing', async (_name, body) => {
    const sid = await newSession('alice');
    await patch(sid, { whitelist: ['keep'] });
    const response = await patch(sid, body);
    expect(response.status).toBe(400);
    expect(typeof (await json(response)).detail).toBe('string');
    expect((await json(await operations.GET(sid, as('alice')))).access).toMatchObject({ whitelist: ['keep'], blacklist: [] });
  });

  it(`accepts ${MAX_ACCESS_LIST_ENTRIES} users, and answers with the lists after the change`, async () => {
    const sid = await newSession('alice');
    const full = Array.from({ length: MAX_ACCESS_LIST_ENTRIES }, (_, i) => `u${i}`);
    const response = await patch(sid, { whitelist: full, is_public: true });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ session_id: sid, is_public: true, whitelist: full, blacklist: [] });
    const moved = await json(await patch(sid, { remove_from_whitelist: ['u0'], add_to_blacklist: ['u0'] }));
    expect(moved.whitelist).toHaveLength(MAX_ACCESS_LIST_ENTRIES - 1);
    expect(moved.blacklist).toEqual(['u0']);
  });

  it('answers 404 for an unknown session before anything else', async () => {
    const response = await patch('no-such-session', { is_public: true });
    expect(response.status).toBe(404);
  });
});
