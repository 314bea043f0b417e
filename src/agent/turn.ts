import type { AgentDefinition } from '../agents/catalog.js';
import type { ChatMessage, Usage } from '../model/types.js';
import type { Principal } from '../principal.js';
import type { StopReason } from './events.js';

export interface TurnResult {
  /** The messages this turn added after the context: assistant answers, tool calls and results. */
  messages: ChatMessage[];
  usage: Usage;
  stopReason: StopReason;
}

/**
 * Where a run's conversation comes from and goes to. Client-side mode: the request carries the
 * history and nothing is kept. Server-side mode (sessions): the history is loaded, the session is
 * held for the run, and `commit` appends the new messages atomically before the client hears `done`.
 */
export interface Turn {
  sessionId: string | null;
  context: ChatMessage[];
  /** The session's model, used when the request names none. */
  model?: string;
  /** The named agent this turn runs (a session's own, or the request's); its instructions are already in `context`. */
  agent?: AgentDefinition;
  /** True when someone can read the result later (a session), so a client that leaves does not stop the run. */
  continueOnDisconnect: boolean;
  commit(result: TurnResult): Promise<void>;
  /** Always called once, after commit or after a failure (which persists nothing), unless the turn was paused. */
  release(): Promise<void>;
  /**
   * The run waits for approvals until `untilMs` (epoch ms): keep the session busy that long without
   * this process, and return what `SessionTurns.resume` needs to finish the turn anywhere later.
   * Absent for client-side turns (nothing to hold).
   */
  pause?(untilMs: number): Promise<PausedTurn>;
}

/** A server-side turn parked in the database while its run waits: plain JSON. */
export interface PausedTurn {
  sessionId: string;
  /** The lease owner: the run id. */
  owner: string;
  /** Who owns the session (may decide its runs' approvals); null when made with auth off. */
  sessionOwnerId: string | null;
  user: ChatMessage;
  /** The turn's new messages when they are not one user message (a Responses input); `user` is then the first. */
  input?: ChatMessage[];
  changes: { systemPrompt?: string; model?: string; metadata?: Record<string, unknown> };
}

export function clientSideTurn(context: ChatMessage[], agent?: AgentDefinition): Turn {
  return {
    sessionId: null,
    context,
    ...(agent === undefined ? {} : { agent }),
    continueOnDisconnect: false,
    async commit() {},
    async release() {},
  };
}

/** A server-side turn request: the new user text and what the session keeps beside its history. */
export interface SessionTurnRequest {
  principal: Principal;
  /** The run that will hold the session: a busy session's 409 names it, so a client can join its stream. */
  runId: string;
  /** On a busy session: answer 409 at once (`reject`), or wait for it in a bounded queue (`enqueue`). */
  onBusy: 'reject' | 'enqueue';
  sessionId?: string;
  /** The new user text: the turn adds it as one user message. */
  message?: string;
  /**
   * The turn's new messages in place of `message` (a Responses input: several messages, or the
   * results of client-side function calls).
   */
  input?: ChatMessage[];
  /**
   * Continue only while the session's history ends exactly here (its `nextSeq`): a conversation
   * that moved on since answers 409 CONVERSATION_MOVED_ON instead of appending after later turns.
   */
  expectedNextSeq?: number;
  /**
   * An answer to store with the turn, in the same transaction, naming where the history ends after
   * it (an OpenAI Responses id): asked for at the commit, from the run's result. Not asked for a
   * turn resumed after approvals: the OpenAI surface, its one user, never pauses.
   */
  response?(result: TurnResult): { id: string; body: Record<string, unknown> };
  systemPrompt?: string;
  model?: string;
  metadata?: Record<string, unknown>;
  /**
   * A new session is made for this agent (and remembers it); a continued session must be this
   * agent's. Absent: a continued session runs its own agent, if it has one.
   */
  agent?: string;
  /**
   * Looks an agent up by name; throws 404 AGENT_NOT_FOUND. Optional so callers that never run
   * agents need not pass it; without it a session that has an agent cannot be continued (404).
   */
  findAgent?(name: string): AgentDefinition;
  /** The system prompt an agent's turn starts with (default: its instructions). */
  agentPrompt?(agent: AgentDefinition): string;
}

/** Implemented by the sessions module: finds or creates the session, checks access, holds it for the run. */
export interface SessionTurns {
  begin(request: SessionTurnRequest): Promise<Turn>;
  /** The turn of a paused run, taken up again (in any process): holds the session until commit or release. */
  resume(paused: PausedTurn): Promise<Turn>;
}
