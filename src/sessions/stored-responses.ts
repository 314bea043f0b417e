import type { Kysely } from 'kysely';
import type { Database, Tables } from '../db/index.js';
import { ChassisError, storeUnavailable } from '../errors.js';
import type { Principal } from '../principal.js';
import { mayAccess, type SessionOperation } from './access.js';
import type { SessionStore } from './session-store.js';

/** A stored response: where it stands in its session, and the object the client got. */
export interface StoredResponse {
  id: string;
  sessionId: string;
  /** The session's next_seq right after this response's turn. */
  nextSeq: number;
  body: Record<string, unknown>;
}

const responseNotFound = (id: string) => new ChassisError(404, 'RESPONSE_NOT_FOUND', `No response with id '${id.slice(0, 128)}' found`, { extra: { param: 'response_id' } });

/**
 * The OpenAI Responses API's ids over our sessions: a response names a session and a point in its
 * history. A response is written by its turn's commit, in the same transaction (SessionStore). Who may read or continue a response is who may read or continue its session; anyone
 * else is told it does not exist (404, not 403: a response id of another user reveals nothing).
 */
export class StoredResponses {
  private readonly db: Kysely<Tables>;

  constructor(
    database: Database,
    private readonly sessions: SessionStore,
  ) {
    this.db = database.db;
  }

  /** The response if `principal` may `operation` its session; 404 otherwise. */
  async find(principal: Principal, id: string, operation: SessionOperation): Promise<StoredResponse> {
    let row: { session_id: string; next_seq: number; body: string } | undefined;
    try {
      row = await this.db.selectFrom('openai_responses').select(['session_id', 'next_seq', 'body']).where('id', '=', id).executeTakeFirst();
    } catch (error) {
      throw storeUnavailable(error);
    }
    if (row === undefined) throw responseNotFound(id);
    const session = await this.sessions.get(row.session_id);
    if (session === undefined || !mayAccess(session, principal, operation)) throw responseNotFound(id);
    return { id, sessionId: row.session_id, nextSeq: Number(row.next_seq), body: JSON.parse(row.body) as Record<string, unknown> };
  }
}
