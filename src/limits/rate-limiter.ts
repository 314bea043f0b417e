import type { RedisConnection } from '../redis/index.js';

export interface LimitDecision {
  allowed: boolean;
  /** Hits counted in the current window, this one included. */
  count: number;
  /** Seconds until the window resets (≥ 1 when not allowed): the Retry-After value. */
  retryAfterSeconds: number;
}

/**
 * Fixed-window counters. `consume` counts and decides in one atomic step, so a burst of parallel
 * requests can never overshoot the limit (a get-then-set would race). `refund` takes one hit back,
 * for limits that count only failures: reserve first, give back on success.
 */
export interface RateLimiter {
  consume(key: string, limit: number, windowSeconds: number): Promise<LimitDecision>;
  refund(key: string): Promise<void>;
  /** Forget a key (e.g. after a successful password reset). */
  clear(key: string): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async consume(key: string, limit: number, windowSeconds: number): Promise<LimitDecision> {
    return this.consumeNow(key, limit, windowSeconds);
  }

  /** Synchronous, hence atomic within the process. */
  consumeNow(key: string, limit: number, windowSeconds: number): LimitDecision {
    const now = Date.now();
    let window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      window = { count: 0, resetAt: now + windowSeconds * 1000 };
      this.windows.set(key, window);
    }
    window.count++;
    return decision(window.count, limit, window.resetAt - now);
  }

  async refund(key: string): Promise<void> {
    const window = this.windows.get(key);
    if (window !== undefined && window.count > 0) window.count--;
  }

  async clear(key: string): Promise<void> {
    this.windows.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }
}

// INCR and the expiry of a new window in one script: atomic across every instance on this Redis.
const CONSUME_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
`;
const REFUND_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;

/**
 * Counters shared by every instance through Redis. When Redis is unreachable, an in-process limiter
 * takes over (the "insurance" strategy): limits stay enforced per instance, never switched off.
 */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisConnection,
    private readonly fallback: MemoryRateLimiter,
  ) {}

  async consume(key: string, limit: number, windowSeconds: number): Promise<LimitDecision> {
    if (!this.redis.ready) return this.fallback.consume(key, limit, windowSeconds);
    try {
      const windowMs = Math.max(1, Math.round(windowSeconds * 1000));
      const [count, ttl] = (await this.redis.client.eval(CONSUME_SCRIPT, 1, this.redisKey(key), windowMs)) as [number, number];
      return decision(count, limit, ttl);
    } catch {
      return this.fallback.consume(key, limit, windowSeconds);
    }
  }

  async refund(key: string): Promise<void> {
    await this.fallback.refund(key);
    if (!this.redis.ready) return;
    await this.redis.client.eval(REFUND_SCRIPT, 1, this.redisKey(key)).catch(() => undefined);
  }

  async clear(key: string): Promise<void> {
    await this.fallback.clear(key);
    if (!this.redis.ready) return;
    await this.redis.client.del(this.redisKey(key)).catch(() => undefined);
  }

  private redisKey(key: string): string {
    return `${this.redis.prefix}rl:${key}`;
  }
}

function decision(count: number, limit: number, msLeft: number): LimitDecision {
  return { allowed: count <= limit, count, retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)) };
}

export function createRateLimiter(redis: RedisConnection | undefined): { limiter: RateLimiter; close(): void } {
  const memory = new MemoryRateLimiter();
  return { limiter: redis === undefined ? memory : new RedisRateLimiter(redis, memory), close: () => memory.close() };
}
