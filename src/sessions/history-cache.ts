import type { FastifyBaseLogger } from 'fastify';
import type { ChatMessage } from '../model/types.js';
import type { RedisConnection } from '../redis/index.js';

/** Bigger tails are not worth a Redis round trip of this size; they are read from the database. */
const MAX_CACHED_BYTES = 1_000_000;

/**
 * A read-through cache in Redis of the tail of a session's history, the part a turn sends the
 * model. An entry is labelled with the history's version (the session's next seq, which every
 * append raises), and a reader asks for the version it read from the database under its lease:
 * an entry is therefore either exactly right or ignored, never stale. Access lists and metadata
 * are not cached: access must change at once on every instance, and the session row that carries
 * them is one primary-key read anyway.
 *
 * Redis is optional here: when it is down or slow (commands time out at 500 ms), every call
 * behaves as a miss and the database answers.
 */
export class HistoryCache {
  private lastWarning = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  async get(sessionId: string, version: number, limit: number): Promise<ChatMessage[] | undefined> {
    if (!this.redis.ready) {
      this.warn(new Error('redis is not connected'));
      return undefined;
    }
    try {
      const raw = await this.redis.client.get(this.key(sessionId));
      if (raw === null) return undefined;
      const entry = JSON.parse(raw) as { version: number; limit: number; messages: ChatMessage[] };
      return entry.version === version && entry.limit === limit ? entry.messages : undefined;
    } catch (error) {
      this.warn(error);
      return undefined;
    }
  }

  async put(sessionId: string, version: number, limit: number, messages: readonly ChatMessage[]): Promise<void> {
    if (!this.redis.ready) return;
    const value = JSON.stringify({ version, limit, messages });
    if (value.length > MAX_CACHED_BYTES) return;
    try {
      await this.redis.client.set(this.key(sessionId), value, 'EX', this.ttlSeconds);
    } catch (error) {
      this.warn(error);
    }
  }

  /** Forget a deleted session at once rather than at the TTL (its content should not linger). */
  async drop(sessionId: string): Promise<void> {
    if (!this.redis.ready) return;
    try {
      await this.redis.client.del(this.key(sessionId));
    } catch (error) {
      this.warn(error);
    }
  }

  private key(sessionId: string): string {
    return `${this.redis.prefix}session:${sessionId}:tail`;
  }

  private warn(error: unknown): void {
    if (Date.now() - this.lastWarning < 10_000) return;
    this.lastWarning = Date.now();
    this.log.warn({ err: error }, 'session cache unavailable; serving sessions from the database');
  }
}
