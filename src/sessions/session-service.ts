import { ChassisError, notFound } from '../errors.js';
import type { Principal } from '../principal.js';
import { applyAccessPatch, checkAccess, requireAuthenticated, type AccessPatch } from './access.js';
import type { HistoryCache } from './history-cache.js';
import type { RecentHistory } from './recent-history.js';
import type { MessagePageQuery, OwnedPageCursor, SessionRecord, SessionStore, StoredMessage } from './session-store.js';

/** Compare-and-set attempts before a PATCH racing other PATCHes gives up with 409. */
const ACCESS_UPDATE_ATTEMPTS = 5;

/** The session operations behind the HTTP routes, each checking access on a fresh database read. */
export class SessionService {
  constructor(
    private readonly store: SessionStore,
    private readonly cache?: HistoryCache,
    private readonly recent?: RecentHistory,
  ) {}

  /** The session, and whether the caller may see its access block (the owner only). */
  async view(principal: Principal, id: string): Promise<{ session: SessionRecord; isOwner: boolean }> {
    const session = await this.load(id);
    checkAccess(session, principal, 'read');
    return { session, isOwner: session.ownerId !== null && session.ownerId === principal.userId };
  }

  async updateAccess(principal: Principal, id: string, patch: AccessPatch): Promise<SessionRecord> {
    requireAuthenticated(principal, 'Changing session access');
    for (let attempt = 0; attempt < ACCESS_UPDATE_ATTEMPTS; attempt++) {
      const session = await this.load(id);
      checkAccess(session, principal, 'manage');
      const next = applyAccessPatch(session, patch);
      if (await this.store.setAccess(id, session.aclVersion, next)) {
        return { ...session, ...next, aclVersion: session.aclVersion + 1 };
      }
    }
    throw new ChassisError(409, 'CONFLICT', `The access of session ${id} is being changed by another request; retry`);
  }

  async remove(principal: Principal, id: string): Promise<void> {
    const session = await this.load(id);
    checkAccess(session, principal, 'manage');
    if (!(await this.store.delete(id))) throw notFound(`Session ${id} not found`);
    this.recent?.drop(id);
    await this.cache?.drop(id);
  }

  async messages(principal: Principal, id: string, query: MessagePageQuery): Promise<{ session: SessionRecord; messages: StoredMessage[]; hasMore: boolean }> {
    const session = await this.load(id);
    checkAccess(session, principal, 'read');
    return { session, ...(await this.store.page(id, query)) };
  }

  /** The caller's own sessions; sessions made with auth off have no owner, so this needs auth. */
  listOwn(principal: Principal, limit: number, cursor?: OwnedPageCursor) {
    const owner = requireAuthenticated(principal, 'Listing your sessions');
    return this.store.listOwned(owner, limit, cursor);
  }

  private async load(id: string): Promise<SessionRecord> {
    const session = await this.store.get(id);
    if (session === undefined) throw notFound(`Session ${id} not found`);
    return session;
  }
}
