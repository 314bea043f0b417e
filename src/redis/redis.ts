import { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';

export interface RedisConnection {
  client: Redis;
  /** Prefix for every key this instance writes (REDIS_KEY_PREFIX), so several apps can share one Redis. */
  prefix: string;
  /** Ready now: callers bypass Redis (falling back to the database or memory) when false. */
  readonly ready: boolean;
  /** Resolves when connected, or after `timeoutMs` (Redis being down never stops the start). */
  whenReady(timeoutMs: number): Promise<void>;
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The only file that imports ioredis. A hung or absent Redis must never hang a request: commands
 * time out (500 ms) and fail at once while disconnected (no offline queue), and the client keeps
 * reconnecting in the background so the server recovers without a restart.
 */
export function connectRedis(url: string, prefix: string, log: FastifyBaseLogger, commandTimeoutMs = 500): RedisConnection {
  const client = new Redis(url, {
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  let lastErrorLog = 0;
  client.on('error', (error) => {
    // An unhandled 'error' event would crash the process; log at most every 10 s.
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now();
      log.warn({ err: error }, 'redis error; continuing without it until it is back');
    }
  });
  client.on('ready', () => log.info('redis connected'));
  return {
    client,
    prefix,
    get ready() {
      return client.status === 'ready';
    },
    whenReady(timeoutMs) {
      if (client.status === 'ready') return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          client.off('ready', done);
          resolve();
        }
        client.once('ready', done);
      });
    },
    async healthy() {
      if (client.status !== 'ready') return false;
      try {
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
