import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { trimHistory, type SessionTurnRequest, type SessionTurns, type Turn, type TurnResult } from '../agent/index.js';
import { ChassisError, notFound } from '../errors.js';
import type { ChatMessage } from '../model/types.js';
import { checkAccess } from './access.js';
import type { HistoryCache } from './history-cache.js';
import type { RecentHistory } from './recent-history.js';
import { SessionLease } from './session-lease.js';
import type { SessionQueue } from './session-queue.js';
import type { SessionChanges, SessionRecord, SessionStore } from './session-store.js';

export interface SessionTurnsOptions {
  store: SessionStore;
  cache?: HistoryCache;
  /** This process's window of recent histories, checked first. */
  recent?: RecentHistory;
  /** SESSION_MAX_MESSAGES: the most messages (system prompt included) a turn sends the model. */
  maxMessages: number;
  /** SESSION_LEASE_SECONDS: how long a run holds its session without renewing. */
  leaseSeconds: number;
  /** Where `on_busy: "enqueue"` runs wait. */
  queue: SessionQueue;
  log: FastifyBaseLogger;
}

/** 128 random bits, base64url: the id is the only secret of a session made with auth off. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

function sessionBusy(id: string, holder: string | null, queueFull = false): ChassisError {
  const running = holder === null ? '' : ` (run ${holder} is running: GET /api/v1/agent/runs/${holder}/stream joins it)`;
  const detail = queueFull ? `session ${id} is busy and its queue is full${running}` : `session ${id} is busy${running}`;
  return new ChassisError(409, 'SESSION_BUSY', detail, { extra: holder === null ? {} : { run_id: holder } });
}

/**
 * Server-side turns. A new session is written only when its first turn commits, so a failed first
 * turn leaves nothing behind. A continued session is leased for the run (409 while another run
 * holds it; see SessionLease). The commit appends the user message and the run's messages in one
 * transaction, and lets go of the lease in the same transaction.
 */
export function createSessionTurns(options: SessionTurnsOptions): SessionTurns {
  const { store, cache, recent, maxMessages, log } = options;
  const leaseMs = Math.round(options.leaseSeconds * 1000);

  function changesOf(request: SessionTurnRequest): SessionChanges {
    return { systemPrompt: request.systemPrompt, model: request.model, metadata: request.metadata };
  }

  function contextOf(systemPrompt: string | null | undefined, history: readonly ChatMessage[], user: ChatMessage): ChatMessage[] {
    const system: ChatMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
    return trimHistory([...system, ...history, user], maxMessages);
  }

  function newSession(request: SessionTurnRequest, user: ChatMessage): Turn {
    const id = newSessionId();
    return {
      sessionId: id,
      context: contextOf(request.systemPrompt, [], user),
      continueOnDisconnect: true,
      async commit(result: TurnResult) {
        const stored = [user, ...result.messages];
        const session = await store.create(
          { id, ownerId: request.principal.via === 'open' ? null : request.principal.userId, ...changesOf(request) },
          stored,
        );
        const tail = stored.slice(-maxMessages);
        recent?.set(id, session.nextSeq, tail);
        void cache?.put(id, session.nextSeq, maxMessages, tail);
      },
      async release() {},
    };
  }

  async function continuedSession(request: SessionTurnRequest, id: string, user: ChatMessage): Promise<Turn> {
    const found = await store.get(id);
    if (found === undefined) throw notFound(`Session ${id} not found`);
    checkAccess(found, request.principal, 'continue');

    // The lease owner is the run id: unguessable, and what a busy session's 409 names.
    const owner = request.runId;
    const acquire = () => store.acquire(id, owner, leaseMs);
    let lease = await acquire();
    if (lease.status === 'busy' && request.onBusy === 'enqueue') {
      const queued = await options.queue.waitTurn(id, acquire);
      if (queued.status === 'queue_full') throw sessionBusy(id, lease.holder, true);
      lease = queued;
    }
    if (lease.status === 'missing') throw notFound(`Session ${id} not found`);
    if (lease.status === 'busy') throw sessionBusy(id, lease.holder);

    const held = new SessionLease(store, id, owner, leaseMs, log, () => options.queue.released(id));
    let history: readonly ChatMessage[];
    let session: SessionRecord;
    try {
      session = lease.session;
      // Access may have changed between the first read and the lease: decide on the row we hold.
      checkAccess(session, request.principal, 'continue');
      // The version read under the lease is current: a window entry of that version is exact.
      history = recent?.get(id, session.nextSeq) ?? (await cache?.get(id, session.nextSeq, maxMessages)) ?? (await store.tail(id, maxMessages));
    } catch (error) {
      await held.release();
      throw error;
    }

    return {
      sessionId: id,
      context: contextOf(request.systemPrompt ?? session.systemPrompt, history, user),
      model: session.model ?? undefined,
      continueOnDisconnect: true,
      async commit(result: TurnResult) {
        const added = [user, ...result.messages];
        const outcome = await store.append(id, owner, added, changesOf(request));
        if (outcome.status === 'missing') throw notFound(`Session ${id} was deleted during the run; the turn was not saved`);
        if (outcome.status === 'lease_lost') {
          throw new ChassisError(409, 'SESSION_BUSY', `session ${id} is busy: this run lost its hold on it and the turn was not saved`);
        }
        held.committed();
        const tail = [...history, ...added].slice(-maxMessages);
        recent?.set(id, outcome.session.nextSeq, tail);
        // Not awaited: the turn is saved, and a hung Redis must not hold the answer back (put never throws).
        void cache?.put(id, outcome.session.nextSeq, maxMessages, tail);
      },
      release: () => held.release(),
    };
  }

  return {
    async begin(request) {
      const user: ChatMessage = { role: 'user', content: request.message };
      return request.sessionId === undefined ? newSession(request, user) : continuedSession(request, request.sessionId, user);
    },
  };
}
