import type { FastifyBaseLogger } from 'fastify';
import { trimHistory, type PausedTurn, type SessionTurnRequest, type SessionTurns, type Turn, type TurnResult } from '../agent/index.js';
import { ChassisError, notFound } from '../errors.js';
import { randomId } from '../random-id.js';
import type { ChatMessage } from '../model/types.js';
import type { AgentDefinition } from '../agents/catalog.js';
import { checkAccess, mayAccess } from './access.js';
import type { HistoryCache } from './history-cache.js';
import type { RecentHistory } from './recent-history.js';
import { SessionLease } from './session-lease.js';
import type { SessionQueue } from './session-queue.js';
import type { ResponseRow } from './session-sql.js';
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
  return randomId();
}

function sessionBusy(id: string, holder: string | null, queueFull = false): ChassisError {
  const running = holder === null ? '' : ` (run ${holder} is running: GET /api/v1/agent/runs/${holder}/stream joins it)`;
  const detail = queueFull ? `session ${id} is busy and its queue is full${running}` : `session ${id} is busy${running}`;
  return new ChassisError(409, 'SESSION_BUSY', detail, { extra: holder === null ? {} : { run_id: holder } });
}

function conversationMovedOn(id: string): ChassisError {
  return new ChassisError(
    409,
    'CONVERSATION_MOVED_ON',
    `The conversation (session ${id}) has later turns than the response you continue: continue from its latest response (branching is not supported)`,
  );
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

  /** A continued session runs the agent it was made for; a request naming another one is refused. */
  function agentOf(request: SessionTurnRequest, session: SessionRecord | undefined): AgentDefinition | undefined {
    const name = session === undefined ? request.agent : session.agent;
    if (session !== undefined && request.agent !== undefined && request.agent !== session.agent) {
      throw new ChassisError(
        409,
        'AGENT_MISMATCH',
        session.agent === null
          ? `session ${session.id} was not made with an agent; continue it without "agent"`
          : `session ${session.id} belongs to agent "${session.agent}"; continue it without "agent" or with that name`,
      );
    }
    if (name === undefined || name === null) return undefined;
    try {
      const found = request.findAgent?.(name);
      if (found === undefined) throw new ChassisError(404, 'AGENT_NOT_FOUND', `No agent named "${name}"`);
      return found;
    } catch (error) {
      if (session === undefined) throw error;
      throw new ChassisError(404, 'AGENT_NOT_FOUND', `session ${session.id} belongs to agent "${name}", which no longer exists; its history stays readable`);
    }
  }

  const promptOf = (request: SessionTurnRequest, agent: AgentDefinition) => request.agentPrompt?.(agent) ?? agent.instructions;

  function responseOf(request: SessionTurnRequest, result: TurnResult): ResponseRow | null {
    const response = request.response?.(result);
    return response === undefined ? null : { id: response.id, body: JSON.stringify(response.body) };
  }

  function changesOf(request: SessionTurnRequest): SessionChanges {
    return { systemPrompt: request.systemPrompt, model: request.model, metadata: request.metadata };
  }

  function contextOf(systemPrompt: string | null | undefined, history: readonly ChatMessage[], input: readonly ChatMessage[]): ChatMessage[] {
    const system: ChatMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
    return trimHistory([...system, ...history, ...input], maxMessages);
  }

  /** What a paused turn records of its input: one user message as before, anything else in full. */
  function pausedInput(input: ChatMessage[]): Pick<PausedTurn, 'user' | 'input'> {
    return input.length === 1 && input[0]!.role === 'user' ? { user: input[0]! } : { user: input[0]!, input };
  }

  /**
   * Parks a held session for a paused run: one lease that lasts until the approvals expire plus a
   * lease length, so the session stays busy (409 naming the run) across a restart, and whoever
   * resumes the run renews it as the same owner.
   */
  async function park(paused: PausedTurn, untilMs: number): Promise<PausedTurn> {
    const held = await store.renew(paused.sessionId, paused.owner, Math.max(0, untilMs - Date.now()) + leaseMs);
    if (!held) throw new ChassisError(409, 'SESSION_BUSY', `session ${paused.sessionId} is busy: this run lost its hold on it and cannot wait for approvals`);
    return paused;
  }

  /** Appends a finished turn under the run's lease; a session deleted or taken meanwhile gets nothing. */
  async function appendTurn(id: string, owner: string, messages: readonly ChatMessage[], changes: SessionChanges, response: ResponseRow | null = null): Promise<SessionRecord> {
    const outcome = await store.append(id, owner, messages, changes, response);
    if (outcome.status === 'missing') throw notFound(`Session ${id} was deleted during the run; the turn was not saved`);
    if (outcome.status === 'lease_lost') {
      throw new ChassisError(409, 'SESSION_BUSY', `session ${id} is busy: this run lost its hold on it and the turn was not saved`);
    }
    return outcome.session;
  }

  function resumedTurn(paused: PausedTurn, held: SessionLease): Turn {
    const { sessionId: id, owner, changes } = paused;
    const input = paused.input ?? [paused.user];
    return {
      sessionId: id,
      context: [],
      continueOnDisconnect: true,
      async commit(result: TurnResult) {
        await appendTurn(id, owner, [...input, ...result.messages], changes);
        held.committed();
      },
      release: () => held.release(),
      async pause(untilMs) {
        held.parked();
        return park(paused, untilMs);
      },
    };
  }

  function newSession(request: SessionTurnRequest, input: ChatMessage[]): Turn {
    const id = newSessionId();
    const agent = agentOf(request, undefined);
    return {
      sessionId: id,
      context: contextOf(agent === undefined ? request.systemPrompt : promptOf(request, agent), [], input),
      ...(agent === undefined ? {} : { agent }),
      continueOnDisconnect: true,
      async commit(result: TurnResult) {
        const stored = [...input, ...result.messages];
        const session = await store.create(
          { id, ownerId: request.principal.via === 'open' ? null : request.principal.userId, agent: agent?.name ?? null, ...changesOf(request) },
          stored,
          responseOf(request, result),
        );
        const tail = stored.slice(-maxMessages);
        recent?.set(id, session.nextSeq, tail);
        void cache?.put(id, session.nextSeq, maxMessages, tail);
      },
      async release() {},
      async pause(untilMs) {
        // The session is written now, empty, so its id is real and busy while the run waits; the
        // user message and the answer are appended together when the run completes.
        const ownerId = request.principal.via === 'open' ? null : request.principal.userId;
        // With its agent: the session remembers it from its first turn, even one that waited.
        await store.create({ id, ownerId, agent: agent?.name ?? null, ...changesOf(request) }, []);
        const lease = await store.acquire(id, request.runId, leaseMs);
        if (lease.status !== 'held') throw sessionBusy(id, lease.status === 'busy' ? lease.holder : null);
        return park({ sessionId: id, owner: request.runId, sessionOwnerId: ownerId, ...pausedInput(input), changes: changesOf(request) }, untilMs);
      },
    };
  }

  async function continuedSession(request: SessionTurnRequest, id: string, input: ChatMessage[]): Promise<Turn> {
    // The lease owner is the run id: unguessable, and what a busy session's 409 names. The store
    // lets the access check refuse the caller before any lease is held or any holder named.
    const owner = request.runId;
    const acquire = () => store.acquire(id, owner, leaseMs, (session) => checkAccess(session, request.principal, 'continue'));
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
    let agent: AgentDefinition | undefined;
    try {
      session = lease.session;
      if (request.expectedNextSeq !== undefined && session.nextSeq !== request.expectedNextSeq) throw conversationMovedOn(id);
      agent = agentOf(request, session);
      // The version read under the lease is current: a window entry of that version is exact.
      history = recent?.get(id, session.nextSeq) ?? (await cache?.get(id, session.nextSeq, maxMessages)) ?? (await store.tail(id, maxMessages));
    } catch (error) {
      await held.release();
      throw error;
    }

    // Only the owner changes the session's settings. A collaborator (public or whitelisted session)
    // adds turns: their system_prompt/model apply to their own turn only, and nothing of theirs
    // (system_prompt, model, metadata) is stored, so the owner's next turn runs as the owner set it.
    const isOwner = session.ownerId === null || session.ownerId === request.principal.userId;
    return {
      sessionId: id,
      context: contextOf(agent === undefined ? (request.systemPrompt ?? session.systemPrompt) : promptOf(request, agent), history, input),
      model: session.model ?? undefined,
      ...(agent === undefined ? {} : { agent }),
      continueOnDisconnect: true,
      async commit(result: TurnResult) {
        const added = [...input, ...result.messages];
        if (!isOwner) await checkStillAllowed(id, request.principal);
        const session = await appendTurn(id, owner, added, isOwner ? changesOf(request) : {}, responseOf(request, result));
        held.committed();
        const tail = [...history, ...added].slice(-maxMessages);
        recent?.advance(id, history, session.nextSeq, added, tail);
        // Not awaited: the turn is saved, and a hung Redis must not hold the answer back (put never throws).
        void cache?.put(id, session.nextSeq, maxMessages, tail);
      },
      release: () => held.release(),
      async pause(untilMs) {
        held.parked();
        return park({ sessionId: id, owner, sessionOwnerId: session.ownerId, ...pausedInput(input), changes: isOwner ? changesOf(request) : {} }, untilMs);
      },
    };
  }

  /**
   * A collaborator's access can be taken away while their run is going (the owner's PATCH does not
   * wait for the lease): decide on a fresh read, just before writing, so their turn is not saved.
   */
  async function checkStillAllowed(id: string, principal: SessionTurnRequest['principal']): Promise<void> {
    const current = await store.get(id);
    if (current === undefined) throw notFound(`Session ${id} was deleted during the run; the turn was not saved`);
    if (!mayAccess(current, principal, 'continue')) {
      throw new ChassisError(403, 'FORBIDDEN', `Your access to session ${id} was removed during the run; the turn was not saved`);
    }
  }

  return {
    async resume(paused) {
      if (!(await store.renew(paused.sessionId, paused.owner, leaseMs))) {
        throw new ChassisError(409, 'SESSION_BUSY', `session ${paused.sessionId} is busy: the waiting run lost its hold on it`);
      }
      return resumedTurn(paused, new SessionLease(store, paused.sessionId, paused.owner, leaseMs, log, () => options.queue.released(paused.sessionId)));
    },
    async begin(request) {
      const input: ChatMessage[] = request.input ?? [{ role: 'user', content: request.message ?? '' }];
      if (input.length === 0) throw new ChassisError(400, 'VALIDATION_FAILED', 'A turn needs at least one new message');
      return request.sessionId === undefined ? newSession(request, input) : continuedSession(request, request.sessionId, input);
    },
  };
}
