import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AgentCatalog, AgentDefinition } from '../agents/catalog.js';
import { findAgent } from '../agents/resolve.js';
import { Type } from '../json-schema.js';
import { ErrorResponse } from './agent-schemas.js';
import { CALLER_OR_OPEN_SECURITY, errorResponses } from './openapi.js';
import type { IdentityResolver } from './identity.js';

const AgentSummary = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    model: Type.Union([Type.String(), Type.Null()], { description: "null: the server's default model (OPENAI_MODEL)" }),
    tools: Type.Array(Type.String(), { description: 'Tool names as the agent lists them; `server__*` stands for every tool of one MCP server' }),
    approval: Type.Union([Type.Array(Type.String()), Type.Literal('all')], { description: 'Tools whose calls wait for a human decision' }),
    has_response_format: Type.Boolean({ description: 'The final answer is JSON validated against a schema' }),
  },
  { description: 'A named agent; its instructions stay on the server' },
);

const AgentList = Type.Object({ agents: Type.Array(AgentSummary) }, { description: 'Every agent, by name' });
const AgentParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });
// 429 (general rate limit) and 500 can answer any /api/v1 route.
const errors = {
  ...errorResponses(429, 500),
  401: { ...ErrorResponse, description: 'Not authenticated' },
  404: { ...ErrorResponse, description: 'AGENT_NOT_FOUND: no agent with that name' },
};

/** What a client may see of an agent: never its instructions (they can hold private prompts). */
function summaryOf(agent: AgentDefinition) {
  return {
    name: agent.name,
    description: agent.description,
    model: agent.model ?? null,
    tools: [...agent.tools],
    approval: agent.approval === 'all' ? ('all' as const) : [...agent.approval],
    has_response_format: agent.responseFormat !== undefined,
  };
}

export function registerAgentsRoutes(app: FastifyInstance, agents: AgentCatalog, identity: IdentityResolver): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const security = CALLER_OR_OPEN_SECURITY;

  typed.get(
    '/api/v1/agents',
    {
      schema: {
        operationId: 'listAgents',
        tags: ['agents'],
        summary: 'Named agents ("agent" in a completion request)',
        security,
        response: { 200: { ...AgentList, description: 'The agents' }, 401: errors[401], ...errorResponses(429, 500) },
      },
    },
    async (request) => {
      await identity(request);
      return { agents: agents.list().map(summaryOf) };
    },
  );

  typed.get(
    '/api/v1/agents/:name',
    {
      schema: {
        operationId: 'getAgent',
        tags: ['agents'],
        summary: 'One named agent',
        security,
        params: AgentParams,
        response: { 200: { ...AgentSummary, description: 'The agent' }, ...errors },
      },
    },
    async (request) => {
      await identity(request);
      return summaryOf(findAgent(agents, request.params.name));
    },
  );
}
