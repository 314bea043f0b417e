import type { Generated } from 'kysely';

/** One conversation. Lists and metadata are JSON text so both dialects store them the same way. */
export interface SessionsTable {
  id: string;
  /** Null when created with auth off: such a session has no owner and is open to anyone with its id. */
  owner_id: string | null;
  /** 0 or 1 (an integer in both dialects, so rows read back the same). */
  is_public: number;
  /** JSON arrays of user ids. */
  whitelist: string;
  blacklist: string;
  /** Bumped by every access change: updates are compare-and-set on it, so two PATCHes never lose one. */
  acl_version: Generated<number>;
  system_prompt: string | null;
  model: string | null;
  /** The named agent the session belongs to (added 2026-12-06; null for sessions made without one). */
  agent: string | null;
  /** JSON object, or null. */
  metadata: string | null;
  message_count: number;
  /** The seq the next stored message gets; also the version of the history. */
  next_seq: number;
  /** Milliseconds since the epoch. */
  created_at: number;
  updated_at: number;
  /** The run holding the session, and until when (ms): a run that dies lets go when the lease expires. */
  lease_owner: string | null;
  lease_until: number | null;
}

/** Append-only: a turn inserts its new messages and never rewrites earlier ones. */
export interface SessionMessagesTable {
  session_id: string;
  seq: number;
  /** One message in OpenAI chat format, as JSON. */
  message: string;
  created_at: number;
}

/**
 * An OpenAI Responses API answer kept for `GET /v1/responses/{id}` and `previous_response_id`: it
 * names a point in its session's history. Deleted with its session.
 */
export interface OpenAIResponsesTable {
  /** `resp_…`: unguessable, like a session id. */
  id: string;
  session_id: string;
  /** The session's next_seq right after this response's turn: continuing is allowed while the session is still there. */
  next_seq: number;
  /** The response object as the client got it, JSON. */
  body: string;
  created_at: number;
}

declare module '../db/tables.js' {
  interface Tables {
    sessions: SessionsTable;
    session_messages: SessionMessagesTable;
    openai_responses: OpenAIResponsesTable;
  }
}
