import { badRequest, ChassisError, forbidden } from '../errors.js';
import type { Principal } from '../principal.js';
import type { AccessLists, SessionRecord } from './session-store.js';

/** Reading and continuing follow the lists; changing access and deleting are the owner's alone. */
export type SessionOperation = 'read' | 'continue' | 'manage';

/** The most user ids one list may hold. */
export const MAX_ACCESS_LIST_ENTRIES = 1000;

/**
 * SPEC §4, in this order: blacklisted → denied (even the owner); owner → allowed; public or
 * whitelisted → allowed to read and continue; else denied. A session created with auth off has no
 * owner: it is open to anyone who knows its id (an unguessable 128-bit value).
 */
export function mayAccess(session: SessionRecord, principal: Principal, operation: SessionOperation): boolean {
  const user = principal.userId;
  if (user !== null && session.blacklist.includes(user)) return false;
  if (session.ownerId === null) return true;
  if (user === session.ownerId) return true;
  if (operation === 'manage') return false;
  return session.isPublic || (user !== null && session.whitelist.includes(user));
}

export function checkAccess(session: SessionRecord, principal: Principal, operation: SessionOperation): void {
  if (mayAccess(session, principal, operation)) return;
  throw forbidden(
    operation === 'manage'
      ? `Only the owner of session ${session.id} may do this`
      : `You do not have access to session ${session.id}`,
  );
}

/** Who sees the `access` block and may list their sessions: needs an authenticated identity. */
export function requireAuthenticated(principal: Principal, what: string): string {
  if (principal.via === 'open' || principal.userId === null) {
    throw new ChassisError(
      400,
      'AUTH_REQUIRED',
      `${what} needs authentication: set CHASSIS_API_KEY or ENABLE_USER_AUTH=true (sessions created without it have no owner)`,
    );
  }
  return principal.userId;
}

/** A PATCH of the access block: whole lists (replace) or changes to them (incremental). */
export interface AccessPatch {
  is_public?: boolean;
  whitelist?: string[];
  blacklist?: string[];
  add_to_whitelist?: string[];
  remove_from_whitelist?: string[];
  add_to_blacklist?: string[];
  remove_from_blacklist?: string[];
}

/** The lists after the patch, or 400 when the patch is ambiguous or leaves a user on both lists. */
export function applyAccessPatch(current: AccessLists, patch: AccessPatch): AccessLists {
  const whitelist = patchList('whitelist', current.whitelist, patch.whitelist, patch.add_to_whitelist, patch.remove_from_whitelist);
  const blacklist = patchList('blacklist', current.blacklist, patch.blacklist, patch.add_to_blacklist, patch.remove_from_blacklist);
  const both = whitelist.filter((user) => blacklist.includes(user));
  if (both.length > 0) {
    throw badRequest(`A user cannot be on both the whitelist and the blacklist: ${both.join(', ')}`);
  }
  return { isPublic: patch.is_public ?? current.isPublic, whitelist, blacklist };
}

function patchList(name: string, current: string[], replace?: string[], add?: string[], remove?: string[]): string[] {
  if (replace !== undefined && (add !== undefined || remove !== undefined)) {
    throw badRequest(`Send either "${name}" (the whole list) or "add_to_${name}"/"remove_from_${name}" (changes), not both`);
  }
  if (replace !== undefined) return checkedList(name, unique(replace.map(normalize)));
  const added = unique((add ?? []).map(normalize));
  const removed = new Set((remove ?? []).map(normalize));
  const conflicting = added.filter((user) => removed.has(user));
  if (conflicting.length > 0) {
    throw badRequest(`"add_to_${name}" and "remove_from_${name}" both name: ${conflicting.join(', ')}`);
  }
  return checkedList(name, unique([...current, ...added]).filter((user) => !removed.has(user)));
}

function checkedList(name: string, users: string[]): string[] {
  if (users.some((user) => user === '')) throw badRequest(`The ${name} cannot hold an empty user id`);
  if (users.length > MAX_ACCESS_LIST_ENTRIES) {
    throw badRequest(`The ${name} would hold ${users.length} users; the limit is ${MAX_ACCESS_LIST_ENTRIES}`);
  }
  return users;
}

// User ids are compared as X-User-ID is read: trimmed.
const normalize = (user: string) => user.trim();
const unique = (users: string[]) => [...new Set(users)];
