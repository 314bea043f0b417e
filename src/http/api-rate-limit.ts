import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ChassisError } from '../errors.js';
import type { RateLimiter } from '../limits/index.js';
import type { IdentityResolver } from './identity.js';

const UNLIMITED = new Set(['/api/v1/health', '/api/v1/openapi.json']);

/**
 * Decided by the route the router matched (its pattern), never the raw URL: `/api/%761/tools`
 * reaches the same route as `/api/v1/tools` and must be counted the same. Requests no route
 * matched (404s) are counted too, so they cannot be used to probe for free.
 */
function limited(request: FastifyRequest): boolean {
  if (request.method === 'OPTIONS') return false; // CORS preflights carry no credentials
  const route = request.routeOptions.url;
  if (route === undefined) return true;
  return route.startsWith('/api/v1/') && !UNLIMITED.has(route);
}

/**
 * ENABLE_RATE_LIMITING: API_RATE_LIMIT_PER_MINUTE requests per identity (the user id, or the client
 * IP when anonymous or when the credentials are wrong), in one-minute windows shared by every
 * instance through Redis when REDIS_URL is set. Counted before the body is read.
 */
export function registerApiRateLimit(app: FastifyInstance, limiter: RateLimiter, perMinute: number, identity: IdentityResolver): void {
  app.addHook('onRequest', async (request) => {
    if (!limited(request)) return;
    const principal = await identity(request).catch(() => null);
    const key = principal?.userId == null ? `api:ip:${request.ip}` : `api:user:${principal.userId}`;
    const decision = await limiter.consume(key, perMinute, 60);
    if (!decision.allowed) {
      throw new ChassisError(429, 'RATE_LIMITED', `Too many requests: the limit is ${perMinute} per minute (API_RATE_LIMIT_PER_MINUTE); retry after ${decision.retryAfterSeconds} s`, {
        headers: { 'retry-after': String(decision.retryAfterSeconds) },
      });
    }
  });
}
