import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyAccessPatch, mayAccess, MAX_ACCESS_LIST_ENTRIES, type AccessPatch, type SessionOperation, type SessionRecord } from '../src/sessions/index.js';
import type { Principal } from '../src/principal.js';

const users = ['alice', 'bob', 'carol', 'dave'];
const user = fc.constantFrom(...users);

function session(fields: Partial<SessionRecord>): SessionRecord {
  return {
    id: 's',
    ownerId: 'alice',
    isPublic: false,
    whitelist: [],
    blacklist: [],
    aclVersion: 0,
    systemPrompt: null,
    model: null,
    agent: null,
    metadata: null,
    messageCount: 0,
    nextSeq: 1,
    createdAt: 0,
    updatedAt: 0,
    ...fields,
  };
}

/** SPEC §4 written as a decision table, independently of the implementation's early returns. */
function reference(s: SessionRecord, who: string | null, operation: SessionOperation): boolean {
  const blacklisted = who !== null && s.blacklist.includes(who);
  const owner = s.ownerId === null || who === s.ownerId;
  const listed = s.isPublic || (who !== null && s.whitelist.includes(who));
  if (blacklisted) return false;
  if (operation === 'manage') return owner;
  return owner || listed;
}

describe('session access rules', () => {
  it('match the SPEC order (blacklist > owner > public > whitelist > deny) for random sessions and callers', () => {
    fc.assert(
      fc.property(
        fc.record({
          ownerId: fc.option(user, { nil: null }),
          isPublic: fc.boolean(),
          whitelist: fc.uniqueArray(user),
          blacklist: fc.uniqueArray(user),
        }),
        fc.option(user, { nil: null }),
        fc.constantFrom<SessionOperation>('read', 'continue', 'manage'),
        fc.constantFrom<Principal['via']>('api_key', 'jwt', 'open'),
        (fields, who, operation, via) => {
          const s = session(fields);
          expect(mayAccess(s, { userId: who, via }, operation)).toBe(reference(s, who, operation));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('deny a blacklisted owner everything, and let an ownerless session be used by anyone not blacklisted', () => {
    const blacklistedOwner = session({ blacklist: ['alice'] });
    for (const operation of ['read', 'continue', 'manage'] as const) {
      expect(mayAccess(blacklistedOwner, { userId: 'alice', via: 'api_key' }, operation)).toBe(false);
      expect(mayAccess(session({ ownerId: null }), { userId: null, via: 'open' }, operation)).toBe(true);
    }
    expect(mayAccess(session({ isPublic: true }), { userId: 'bob', via: 'api_key' }, 'manage')).toBe(false);
    expect(mayAccess(session({ whitelist: ['bob'] }), { userId: 'bob', via: 'jwt' }, 'continue')).toBe(true);
  });
});

describe('access PATCH', () => {
  const current = { isPublic: false, whitelist: ['bob'], blacklist: ['carol'] };
  const rejected: Array<[string, AccessPatch, RegExp]> = [
    ['replace and add on the whitelist', { whitelist: ['x'], add_to_whitelist: ['y'] }, /either "whitelist".*not both/],
    ['replace and remove on the blacklist', { blacklist: [], remove_from_blacklist: ['carol'] }, /either "blacklist".*not both/],
    ['a user added to both lists', { add_to_whitelist: ['dave'], add_to_blacklist: ['dave'] }, /both the whitelist and the blacklist: dave/],
    ['a whitelisted user added to the blacklist', { add_to_blacklist: ['bob'] }, /both .*: bob/],
    ['the same user in both replacement lists', { whitelist: ['eve'], blacklist: ['eve'] }, /both .*: eve/],
    ['adding and removing one user', { add_to_whitelist: ['x'], remove_from_whitelist: ['x'] }, /both name: x/],
    ['a blank user id', { whitelist: ['  '] }, /empty user id/],
  ];
  it.each(rejected)('rejects %s with 400', (_name, patch, detail) => {
    expect(() => applyAccessPatch(current, patch)).toThrow(detail);
    try {
      applyAccessPatch(current, patch);
    } catch (error) {
      expect((error as { status: number }).status).toBe(400);
    }
  });

  it('applies replacements and incremental changes, deduplicated and trimmed', () => {
    expect(applyAccessPatch(current, { is_public: true })).toEqual({ isPublic: true, whitelist: ['bob'], blacklist: ['carol'] });
    expect(applyAccessPatch(current, { add_to_whitelist: ['dave', ' dave ', 'bob'], remove_from_blacklist: ['carol'] })).toEqual({
      isPublic: false,
      whitelist: ['bob', 'dave'],
      blacklist: [],
    });
    // Moving a user from one list to the other in one request is allowed.
    expect(applyAccessPatch(current, { remove_from_whitelist: ['bob'], add_to_blacklist: ['bob'] })).toEqual({
      isPublic: false,
      whitelist: [],
      blacklist: ['carol', 'bob'],
    });
    expect(applyAccessPatch(current, { whitelist: [] })).toEqual({ isPublic: false, whitelist: [], blacklist: ['carol'] });
  });

  it('caps a list at the limit, counting what it already holds', () => {
    const full = Array.from({ length: MAX_ACCESS_LIST_ENTRIES }, (_, i) => `u${i}`);
    expect(applyAccessPatch({ isPublic: false, whitelist: [], blacklist: [] }, { whitelist: full }).whitelist).toHaveLength(MAX_ACCESS_LIST_ENTRIES);
    expect(() => applyAccessPatch({ isPublic: false, whitelist: full, blacklist: [] }, { add_to_whitelist: ['one-more'] })).toThrow(
      `would hold ${MAX_ACCESS_LIST_ENTRIES + 1} users; the limit is ${MAX_ACCESS_LIST_ENTRIES}`,
    );
  });
});
