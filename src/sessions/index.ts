import type { FastifyBaseLogger } from 'fastify';
import type { SessionTurns } from '../agent/index.js';
import type { Database } from '../db/index.js';
import type { RedisConnection } from '../redis/index.js';
import { HistoryCache } from './history-cache.js';
import { RecentHistory } from './recent-history.js';
import { SessionQueue } from './session-queue.js';
import { SessionService } from './session-service.js';
import { SessionStore } from './session-store.js';
import { createSessionTurns } from './session-turns.js';
import { StoredResponses } from './stored-responses.js';

export { sessionMigrations } from './migrations.js';
export { SessionService } from './session-service.js';
export { SessionStore, type SessionRecord, type StoredMessage, type AccessLists } from './session-store.js';
export { HistoryCache } from './history-cache.js';
export { RecentHistory } from './recent-history.js';
export { mayAccess, applyAccessPatch, MAX_ACCESS_LIST_ENTRIES, type AccessPatch, type SessionOperation } from './access.js';
export { createSessionTurns, newSessionId } from './session-turns.js';
export { StoredResponses, type StoredResponse } from './stored-responses.js';

export interface SessionsOptions {
  database: Database;
  redis?: RedisConnection;
  maxMessages: number;
  /** SESSION_HISTORY_MEMORY_MB in bytes: the in-process window of recent histories (0 = none). */
  historyMemoryBytes?: number;
  leaseSeconds: number;
  cacheTtlSeconds: number;
  /** `on_busy: "enqueue"`: runs waiting per session, and how long each may wait. */
  queueMaxWaiting: number;
  queueTimeoutSeconds: number;
  log: FastifyBaseLogger;
}

/**
 * Server-side sessions: the turns the agent route runs, the operations the session routes expose,
 * and the OpenAI Responses ids that name points in them.
 */
export function createSessions(options: SessionsOptions): { turns: SessionTurns; service: SessionService; responses: StoredResponses; waiting(): number } {
  const store = new SessionStore(options.database);
  const queue = new SessionQueue(options.queueMaxWaiting, options.queueTimeoutSeconds * 1000);
  const cache = options.redis === undefined ? undefined : new HistoryCache(options.redis, options.cacheTtlSeconds, options.log);
  const recent = (options.historyMemoryBytes ?? 0) > 0 ? new RecentHistory(options.historyMemoryBytes!) : undefined;
  return {
    turns: createSessionTurns({
      store,
      cache,
      recent,
      maxMessages: options.maxMessages,
      leaseSeconds: options.leaseSeconds,
      queue,
      log: options.log,
    }),
    service: new SessionService(store, cache, recent),
    responses: new StoredResponses(options.database, store),
    waiting: () => queue.waiting,
  };
}
