import type { FastifyInstance } from 'fastify';
import { Type } from '../json-schema.js';
import { scrubAddresses, type McpTools } from '../tools/index.js';
import { checkStores, type HealthCheck } from './health-routes.js';

const McpServerState = Type.Object({
  name: Type.String(),
  state: Type.String({ description: 'connecting | ready | down | closed' }),
  transport: Type.Union([Type.String(), Type.Null()], { description: 'stdio | streamable_http | sse, once known' }),
  tools: Type.Integer({ description: 'Tools the server offers (its last list while it is down)' }),
  required: Type.Boolean({ description: '"required": true in the MCP config: readiness waits for it' }),
  last_error: Type.Union([Type.String(), Type.Null()], { description: 'Why the last connection failed, with addresses and paths removed' }),
});

const ReadyResponse = Type.Object({
  status: Type.String({ description: 'ready | not_ready | shutting_down' }),
  checks: Type.Record(Type.String(), Type.Union([Type.Boolean(), Type.Null()]), { description: 'Each store: true up, false down, null not configured' }),
  mcp: Type.Array(McpServerState),
});

/**
 * GET /ready: may this instance take traffic? The database and Redis (each when configured) must
 * answer and every MCP server marked required must be connected; /health stays the cheap liveness
 * probe. Not behind the API key (load balancers and orchestrators call it), so what it shows is
 * kept to states and counts: an MCP error keeps its reason but loses URLs, addresses and paths.
 */
export function registerReadyRoutes(app: FastifyInstance, checks: () => HealthCheck[], mcp: McpTools, isClosing: () => boolean): void {
  app.get(
    '/ready',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: stores reachable and required MCP servers connected',
        security: [],
        response: {
          200: { ...ReadyResponse, description: 'Ready for traffic' },
          503: { ...ReadyResponse, description: 'Not ready (a store down, a required MCP server not connected) or shutting down' },
        },
      },
    },
    async (_request, reply) => {
      const { stores: results, requiredDown, optionalDown } = await checkStores(checks());
      const servers = mcp.status().map((server) => ({
        name: server.name,
        state: server.state,
        transport: server.transport,
        tools: server.tools,
        required: server.required,
        last_error: server.lastError === null ? null : withoutAddresses(server.lastError),
      }));
      // Unlike /health (degraded), a configured Redis that is down makes the instance not ready.
      const ready = !requiredDown && !optionalDown && servers.every((server) => !server.required || server.state === 'ready');
      const status = isClosing() ? 'shutting_down' : ready ? 'ready' : 'not_ready';
      return reply.code(status === 'ready' ? 200 : 503).send({ status, checks: results, mcp: servers });
    },
  );
}

/** A connection error's reason for /ready: the MCP scrubber's, plus bare IPv6 addresses and file paths, cut to 300 characters. */
export function withoutAddresses(text: string): string {
  return scrubAddresses(text, '<url>')
    .replace(/\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b/gi, '<address>')
    .replace(/(^|[\s('"])(?:\/[^\s)'"]+)+/g, '$1<path>')
    .slice(0, 300);
}
