export { connectRedis, type RedisConnection } from './redis.js';
