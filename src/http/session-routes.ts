import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { badRequest } from '../errors.js';
import type { SessionRecord, SessionService, StoredMessage } from '../sessions/index.js';
import { ErrorResponse } from './agent-schemas.js';
import type { IdentityResolver } from './identity.js';
import {
  AccessPatchBody,
  AccessResponse,
  DeleteResponse,
  MESSAGE_PAGE,
  MessagesQuery,
  MessagesResponse,
  SESSION_PAGE,
  SessionParams,
  SessionResponse,
  SessionsQuery,
  SessionsResponse,
} from './session-schemas.js';

export interface SessionRouteDeps {
  identity: IdentityResolver;
  /** Absent when ENABLE_PERSISTENCE=false: the routes then answer 400 saying how to turn it on. */
  sessions?: SessionService;
}

const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse };

/** Reading, sharing and deleting server-side sessions (SPEC §4), plus reading them back page by page. */
export function registerSessionRoutes(app: FastifyInstance, deps: SessionRouteDeps): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['sessions'];
  const sessions = (): SessionService => {
    if (deps.sessions === undefined) throw badRequest('Server-side sessions are disabled on this server: set ENABLE_PERSISTENCE=true');
    return deps.sessions;
  };

  typed.get(
    '/api/v1/agent/session/:id',
    { schema: { tags, summary: 'A session: counts, times, model, metadata; its access block for the owner', params: SessionParams, response: { 200: SessionResponse, ...errors } } },
    async (request) => {
      const principal = await deps.identity(request);
      const { session, isOwner } = await sessions().view(principal, request.params.id);
      return {
        ...sessionSummary(session),
        ...(isOwner ? { access: { owner_id: session.ownerId, is_public: session.isPublic, whitelist: session.whitelist, blacklist: session.blacklist } } : {}),
      };
    },
  );

  typed.patch(
    '/api/v1/agent/session/:id/access',
    {
      schema: {
        tags,
        summary: 'Share a session: public flag, whitelist, blacklist (owner only, needs auth)',
        params: SessionParams,
        body: AccessPatchBody,
        response: { 200: AccessResponse, ...errors },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      const session = await sessions().updateAccess(principal, request.params.id, request.body);
      return { session_id: session.id, is_public: session.isPublic, whitelist: session.whitelist, blacklist: session.blacklist };
    },
  );

  typed.delete(
    '/api/v1/agent/session/:id',
    { schema: { tags, summary: 'Delete a session and its messages (owner only)', params: SessionParams, response: { 200: DeleteResponse, ...errors } } },
    async (request) => {
      const principal = await deps.identity(request);
      await sessions().remove(principal, request.params.id);
      return { status: 'deleted' as const, session_id: request.params.id };
    },
  );

  typed.get(
    '/api/v1/agent/session/:id/messages',
    {
      schema: {
        tags,
        summary: 'A page of the stored messages, oldest first (latest page by default; "before"/"after" page by seq)',
        params: SessionParams,
        querystring: MessagesQuery,
        response: { 200: MessagesResponse, ...errors },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      const query = request.query;
      const page = await sessions().messages(principal, request.params.id, {
        limit: pageSize(query.limit, MESSAGE_PAGE),
        before: seq(query.before),
        after: seq(query.after),
      });
      return {
        session_id: page.session.id,
        message_count: page.session.messageCount,
        messages: page.messages.map(messageView),
        has_more: page.hasMore,
      };
    },
  );

  typed.get(
    '/api/v1/agent/sessions',
    {
      schema: {
        tags,
        summary: 'Your own sessions, most recently updated first (needs auth)',
        querystring: SessionsQuery,
        response: { 200: SessionsResponse, ...errors },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      const { limit, cursor } = request.query;
      const page = await sessions().listOwn(principal, pageSize(limit, SESSION_PAGE), cursor === undefined ? undefined : decodeCursor(cursor));
      return {
        sessions: page.sessions.map(sessionSummary),
        next_cursor: page.next === undefined ? null : Buffer.from(JSON.stringify([page.next.updatedAt, page.next.id])).toString('base64url'),
      };
    },
  );
}

function sessionSummary(session: SessionRecord) {
  return {
    session_id: session.id,
    message_count: session.messageCount,
    created_at: new Date(session.createdAt).toISOString(),
    updated_at: new Date(session.updatedAt).toISOString(),
    model: session.model,
    ...(session.agent === null || session.agent === undefined ? {} : { agent: session.agent }),
    metadata: session.metadata,
  };
}

function messageView(stored: StoredMessage) {
  return { seq: stored.seq, ...stored.message, created_at: new Date(stored.createdAt).toISOString() };
}

function pageSize(raw: string | undefined, limits: { default: number; max: number }): number {
  if (raw === undefined) return limits.default;
  const size = Number(raw);
  if (size < 1 || size > limits.max) throw badRequest(`limit must be between 1 and ${limits.max}`);
  return size;
}

const seq = (raw: string | undefined) => (raw === undefined ? undefined : Number(raw));

function decodeCursor(cursor: string): { updatedAt: number; id: string } {
  try {
    const [updatedAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof updatedAt === 'number' && Number.isFinite(updatedAt) && typeof id === 'string') return { updatedAt, id };
  } catch {
    // fall through to the one error below
  }
  throw badRequest('cursor is not valid: pass next_cursor from the previous page');
}
