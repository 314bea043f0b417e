import type { FastifyInstance } from 'fastify';
import { ChassisError } from '../errors.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../json-depth.js';

/**
 * Bodies are JSON only: any other media type (forms, text) gets 415 naming application/json.
 * JSON is parsed as Fastify does (its proto-poisoning checks included), except that an empty body
 * is no body on a route that takes none: many HTTP clients send `Content-Type: application/json`
 * on every request, DELETE and POST-without-payload included. Nesting depth is checked in one
 * pass first, so a deeply nested body gets a 400 naming the limit instead of overflowing the stack
 * later (JSON.stringify, validation) into a 500.
 */
export function jsonBodiesOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' && request.routeOptions.schema?.body === undefined) {
      done(null, undefined);
      return;
    }
    if (jsonTooDeep(body as string, MAX_JSON_DEPTH)) {
      done(new ChassisError(400, 'JSON_TOO_DEEP', `The request body nests arrays/objects more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}

/**
 * A known path asked with a method it does not serve answers 405 with `Allow` (RFC 9110 §15.5.6),
 * not 404. Each route's path becomes a pattern once, at registration; the check runs only on a miss.
 */
export function methodNotAllowed(app: FastifyInstance): (method: string, path: string) => ChassisError | null {
  const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  app.addHook('onRoute', (route) => {
    // The CORS preflight catch-all (OPTIONS *) says nothing about a path.
    if (route.url === '*' || route.url === '/*') return;
    const source = route.url
      .split('/')
      .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    const pattern = new RegExp(`^${source}$`);
    let entry = routes.find((known) => known.pattern.source === pattern.source);
    if (entry === undefined) routes.push((entry = { pattern, methods: new Set() }));
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) entry.methods.add(method);
  });
  return (method, path) => {
    const allowed = new Set<string>();
    for (const route of routes) if (route.pattern.test(path)) for (const known of route.methods) allowed.add(known);
    if (allowed.size === 0 || allowed.has(method)) return null;
    const allow = [...allowed].sort().join(', ');
    return new ChassisError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${allow}`, { headers: { allow } });
  };
}
