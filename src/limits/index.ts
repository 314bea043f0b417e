export { createRateLimiter, MemoryRateLimiter, RedisRateLimiter, type LimitDecision, type RateLimiter } from './rate-limiter.js';
