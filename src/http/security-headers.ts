import type { FastifyInstance } from 'fastify';

export const API_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

// The docs page loads its own scripts and styles; everything else is JSON and needs none.
const DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/** Set on every response, errors and SSE included (the SSE writer copies reply headers). */
export function registerSecurityHeaders(app: FastifyInstance): void {
  // Callback-style: nothing here waits, so no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(API_HEADERS);
    if (request.url.startsWith('/docs')) {
      reply.header('content-security-policy', DOCS_CSP);
      reply.header('cache-control', 'no-cache');
    }
    done();
  });
}
