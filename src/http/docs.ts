import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

/** Hop-by-hop and length headers of the docs app's answer: the outer reply sets its own. */
const NOT_COPIED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

/**
 * `/api/v1/openapi.json` and the interactive docs at `/docs`, generated from the route schemas
 * by @fastify/swagger and @fastify/swagger-ui, built on first use: the routes registered after
 * this are recorded, and the first docs request replays them (schemas only) into a private
 * Fastify instance with the two plugins. A server nobody reads the docs of never loads them
 * (about 5 MB of memory at start), and the document is the same.
 */
export function registerDocs(app: FastifyInstance, version: string): void {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    // HEAD routes are added again by the docs app itself; hidden ones are never documented.
    if (route.method !== 'HEAD' && route.schema?.hide !== true) routes.push(route);
  });
  let docsApp: Promise<FastifyInstance> | undefined;
  const docs = () => (docsApp ??= buildDocsApp(routes, version));
  app.addHook('onClose', async () => {
    if (docsApp !== undefined) await (await docsApp).close();
  });

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => (await docs()).swagger());
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    const answer = await (await docs()).inject({ method: 'GET', url: request.url, headers: { accept: request.headers.accept ?? '*/*' } });
    // Our 404 (a JSON `detail`), not the docs app's.
    if (answer.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !NOT_COPIED.has(name)) reply.header(name, value);
    }
    return reply.code(answer.statusCode).send(answer.rawPayload);
  };
  app.get('/docs', { schema: { hide: true } }, forward);
  app.get('/docs/*', { schema: { hide: true } }, forward);
}

async function buildDocsApp(routes: readonly RouteOptions[], version: string): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
  ]);
  const docs = Fastify({ logger: false });
  // Only the schemas' text is used here: nothing to validate or serialize.
  docs.setValidatorCompiler(() => () => true);
  docs.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await docs.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Agent Chassis',
        version,
        description:
          'A ready backend for LLM agents. Errors are JSON {detail, code}. Routes marked with apiKey/bearer need X-API-Key or a Bearer token when CHASSIS_API_KEY or ENABLE_USER_AUTH is set; with neither the API is open.',
        license: { name: 'Proprietary', url: 'https://example.invalid/license' },
        contact: { name: 'Agent Chassis maintainers', url: 'https://example.invalid/agent-chassis' },
      },
      // Relative: the document describes the server that serves it, wherever it is deployed.
      // x-internal: false tells inventory linters (OWASP API9) this is the public surface.
      servers: [{ url: '/', description: 'Production: the server that serves this document', 'x-internal': false } as { url: string; description: string }],
      tags: [
        { name: 'agent', description: 'Run the agent loop; list its tools' },
        { name: 'agents', description: 'Named agents (AGENTS_DIR and code)' },
        { name: 'runs', description: 'Follow, resume and cancel runs' },
        { name: 'sessions', description: 'Server-side conversations and who may use them' },
        { name: 'auth', description: 'User accounts (ENABLE_USER_AUTH=true)' },
        { name: 'health', description: 'Liveness, readiness and store status' },
        { name: 'openai', description: 'OpenAI-compatible API: agents as models (errors in OpenAI\'s shape)' },
        { name: 'admin', description: 'Operator actions, with the server API key only' },
        { name: 'playground', description: 'What the web playground needs to know about this server' },
      ],
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'CHASSIS_API_KEY; X-User-ID then names the end user' },
          // The same header, its own scheme: the admin routes take the server's key alone (no user token, no X-User-ID role).
          adminKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'CHASSIS_API_KEY only: admin routes refuse every user token' },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'An access token from /auth/login, /auth/refresh or /auth/google: HS256 with typ, iss, aud, exp, nbf and jti checked, following RFC8725',
          },
        },
      },
      security: [{ apiKey: [] }, { bearer: [] }],
    },
    transform: ({ schema, url }) => ({ schema: integerQueries(schema), url }),
  });
  for (const route of routes) docs.route({ method: route.method, url: route.url, schema: route.schema, handler: async () => null });
  await docs.register(swaggerUi, { routePrefix: '/docs' });
  await docs.ready();
  return docs;
}

/**
 * Query values arrive as text and are validated as digit strings (Ajv does not coerce types
 * here, so a body's "1" never passes for 1); on the wire that is exactly an integer query
 * parameter, and the document says so, so generated clients take numbers.
 */
function integerQueries(schema: any): any {
  const properties = schema?.querystring?.properties;
  if (properties === undefined) return schema;
  const typed: Record<string, unknown> = {};
  for (const [name, property] of Object.entries<any>(properties)) {
    const digits = typeof property.pattern === 'string' ? /^\^\[0-9\]\{1,(\d+)\}\$$/.exec(property.pattern) : null;
    typed[name] = digits === null ? property : { type: 'integer', format: 'int64', minimum: 0, maximum: 10 ** Number(digits[1]) - 1, description: property.description };
  }
  return { ...schema, querystring: { ...schema.querystring, properties: typed } };
}
