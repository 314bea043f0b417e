import type { FastifyInstance } from 'fastify';
import { ChassisError } from '../errors.js';
import type { IdentityResolver } from './identity.js';

/**
 * Checks that run before a request's body is read, so a caller who may not use a route cannot make
 * the server read, buffer and parse a large body first (every hook here sees only the headers).
 */

/** The /api/v1 routes anyone may call: health, the OpenAPI document, and the account flows (which have their own limits). /auth/me needs a token. */
export function needsCredentials(route: string | undefined): boolean {
  if (route === undefined || !route.startsWith('/api/v1/')) return false;
  if (route === '/api/v1/health' || route === '/api/v1/openapi.json') return false;
  if (route.startsWith('/api/v1/auth/')) return route === '/api/v1/auth/me';
  return true;
}

/**
 * Resolves the caller's identity in onRequest for every route that needs one: a missing or wrong
 * API key or token is answered 401 from the headers alone. Decided on the matched route pattern,
 * never the raw URL, so percent-encoding a path cannot step around it. The route reuses the result
 * (the resolver keeps one answer per request).
 */
export function registerCredentialGate(app: FastifyInstance, identity: IdentityResolver): void {
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS') return; // CORS preflights carry no credentials
    if (needsCredentials(request.routeOptions.url)) await identity(request);
  });
}

/** Account bodies are a few short strings (an email, a password, a code, a token): 8 KiB is ample; a Google ID token is about 1-2 KB. */
export const ACCOUNT_BODY_LIMIT_BYTES = 8 * 1024;

/** Gives every route declared in `scope` after this call ACCOUNT_BODY_LIMIT_BYTES as its body limit (unless it sets its own). */
export function limitAccountBodies(scope: FastifyInstance): void {
  scope.addHook('onRoute', (route) => {
    route.bodyLimit ??= ACCOUNT_BODY_LIMIT_BYTES;
  });
}

/** What a route with no body schema may be sent: nothing it reads, so 1 KiB is plenty. */
export const BODILESS_LIMIT_BYTES = 1024;

/**
 * Routes declared after this call that have no body schema (GETs, POST /runs/{id}/cancel, …) get
 * BODILESS_LIMIT_BYTES as their body limit: Fastify would otherwise read and parse up to
 * BODY_LIMIT_BYTES of a body nobody looks at.
 */
export function limitBodilessRoutes(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (route.schema?.body === undefined) route.bodyLimit ??= BODILESS_LIMIT_BYTES;
  });
}

/**
 * An OPTIONS request that is not a CORS preflight (no Origin or no Access-Control-Request-Method)
 * gets our JSON error, not the CORS plugin's text/plain one. Must be registered before the CORS plugin.
 */
export function refuseBareOptions(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.method !== 'OPTIONS' || (request.headers.origin && request.headers['access-control-request-method'])) return done();
    done(new ChassisError(400, 'VALIDATION_FAILED', 'OPTIONS is only answered as a CORS preflight: send Origin and Access-Control-Request-Method'));
  });
}
