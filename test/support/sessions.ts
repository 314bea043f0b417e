import type { FastifyBaseLogger } from 'fastify';
import { migrate, openDatabase, type Database } from '../../src/db/index.js';
import type { ChatMessage } from '../../src/model/types.js';
import { sessionMigrations } from '../../src/sessions/index.js';

/** A logger that drops everything, for stores used outside an app. */
export const silentLog = {
  level: 'silent',
  fatal() {},
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  silent() {},
  child() {
    return silentLog;
  },
} as unknown as FastifyBaseLogger;

/** A migrated database at `url` (sqlite:… or postgres://…). */
export async function openSessionDatabase(url: string): Promise<Database> {
  const database = openDatabase({ url, connectTimeoutSeconds: 2, log: silentLog });
  await migrate(database, { ...sessionMigrations });
  return database;
}

/**
 * The provider contract a strict upstream enforces: every assistant message with tool_calls is
 * followed by one tool message per call id, and no tool message stands alone.
 */
export function historyProblem(messages: ChatMessage[]): string | null {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role === 'tool') return `message ${i}: a tool result without its call`;
    if (message.role === 'assistant' && message.content === null && !message.tool_calls?.length) return `message ${i}: an empty assistant message`;
    if (message.role === 'assistant' && message.tool_calls?.length) {
      for (const call of message.tool_calls) {
        const result = messages[++i];
        if (result?.role !== 'tool' || result.tool_call_id !== call.id) return `message ${i}: tool call ${call.id} has no result`;
      }
    }
  }
  return null;
}

export const user = (content: string): ChatMessage => ({ role: 'user', content });
export const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

/** A response body as JSON, untyped (tests check its shape). */
export const json = (response: Response): Promise<any> => response.json();

/** Server-side sessions on a throw-away SQLite, no retries (failures show at once), no rate limit in the way. */
export function sessionEnv(upstreamUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ENABLE_PERSISTENCE: 'true',
    DATABASE_URL: 'sqlite::memory:',
    OPENAI_BASE_URL: upstreamUrl,
    UPSTREAM_MAX_RETRIES: '0',
    ENABLE_RATE_LIMITING: 'false',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export async function sendJson(url: string, method: 'GET' | 'PATCH' | 'DELETE', headers: Record<string, string> = {}, body?: unknown): Promise<Response> {
  return fetch(url, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
