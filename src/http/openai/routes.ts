import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { clientSideTurn, type Turn } from '../../agent/index.js';
import type { ResolvedAgent } from '../../agents/resolve-agent.js';
import { ChassisError } from '../../errors.js';
import type { ChatMessage } from '../../model/index.js';
import type { Principal } from '../../principal.js';
import type { LaunchedRun } from '../launch-run.js';
import { CALLER_OR_OPEN_SECURITY } from '../openapi.js';
import { ChunkEncoder, chatCompletionOf, type ChatEncoding } from './chat-encoder.js';
import { invalidParam, registerOpenAIErrors } from './errors.js';
import { completedRun, DEFAULT_AGENT, findAgent, startOpenAIRun, streamFrames, type OpenAIRouteDeps } from './openai-run.js';
import { readChatRequest, type ChatPlan } from './request.js';
import { registerResponsesRoutes } from './responses-routes.js';
import { chatSchemas, ModelList, ModelSchema, OpenAIErrorSchema, type ChatCompletionRequest } from './schemas.js';

export { DEFAULT_AGENT, type OpenAIRouteDeps } from './openai-run.js';

/** `/v1` is canonical (what a client's base URL ends with); the same routes answer under `/api/v1/openai/v1`. */
export const OPENAI_PREFIXES = ['/v1', '/api/v1/openai/v1'] as const;

/**
 * The OpenAI-compatible surface: Chat Completions, Responses and the model list, each an encoder over the
 * same run log as the native API. Registered once per prefix, in its own plugin so its errors
 * (auth, limits, validation, unknown paths) answer in OpenAI's shape.
 */
export async function registerOpenAIRoutes(app: FastifyInstance, deps: OpenAIRouteDeps): Promise<void> {
  const schemas = chatSchemas(deps.config);
  const startedAt = Math.floor(Date.now() / 1000);
  for (const prefix of OPENAI_PREFIXES) {
    // The alias is the same operation: documented once.
    const hide = prefix !== '/v1';
    await app.register(
      async (scope) => {
        registerOpenAIErrors(scope);
        const typed = scope.withTypeProvider<TypeBoxTypeProvider>();
        const error = (description: string) => ({ ...OpenAIErrorSchema, description });
        const errors = {
          401: error('Missing or invalid credentials'),
          404: error('Unknown model (code model_not_found), session or response (code response_not_found)'),
          429: error('API_RATE_LIMIT_PER_MINUTE reached (Retry-After says when to retry)'),
          500: error('Internal server error (details only in the server log)'),
          502: error('The model failed (upstream error)'),
          503: error('Server busy, shutting down, or the model is not configured'),
          504: error('The model timed out'),
        };
        const requestErrors = {
          400: error('Invalid or unsupported request field (param names it)'),
          409: error('The session is busy with another run, or the conversation moved on past previous_response_id (code conversation_moved_on)'),
          413: error('Request body too large'),
        };
        // Bearer (the API key or an access token, as OpenAI clients send it), X-API-Key, or none on an open server.
        const security = CALLER_OR_OPEN_SECURITY;
        typed.post(
          '/chat/completions',
          {
            config: { bearerApiKey: true },
            schema: {
              hide,
              operationId: 'openaiCreateChatCompletion',
              tags: ['openai'],
              summary: 'OpenAI Chat Completions: run an agent as a model (JSON, or chunks with "stream": true)',
              security,
              body: schemas.ChatCompletionRequest,
              response: { 200: schemas.ChatCompletion, ...requestErrors, ...errors },
            },
          },
          (request, reply) => chatCompletion(request, reply, deps),
        );
        typed.get(
          '/models',
          {
            config: { bearerApiKey: true },
            schema: { hide, operationId: 'openaiListModels', tags: ['openai'], summary: 'The agents, in OpenAI\'s model list format', security, response: { 200: ModelList, ...errors } },
          },
          async (request) => {
            await deps.identity(request);
            const named = deps.agents.list();
            const ids = named.some((agent) => agent.name === DEFAULT_AGENT) ? [] : [DEFAULT_AGENT];
            return { object: 'list' as const, data: [...ids, ...named.map((agent) => agent.name)].map((id) => modelObject(id, startedAt)) };
          },
        );
        typed.get(
          '/models/:model',
          {
            config: { bearerApiKey: true },
            schema: {
              hide,
              operationId: 'openaiRetrieveModel',
              tags: ['openai'],
              summary: 'One agent, in OpenAI\'s model format',
              security,
              params: { type: 'object', properties: { model: { type: 'string', maxLength: 256 } }, required: ['model'] } as const,
              response: { 200: ModelSchema, ...errors },
            },
          },
          async (request) => {
            await deps.identity(request);
            const { model } = request.params as { model: string };
            findAgent(model, deps.agents);
            return modelObject(model, startedAt);
          },
        );
        registerResponsesRoutes(typed, deps, { hide, security, errors, requestErrors });
      },
      { prefix },
    );
  }
}

function modelObject(id: string, created: number) {
  return { id, object: 'model' as const, created, owned_by: 'agent-chassis' };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function chatCompletion(request: FastifyRequest, reply: FastifyReply, deps: OpenAIRouteDeps) {
  const principal = await deps.identity(request);
  // Validated against schemas.ChatCompletionRequest before the handler runs.
  const plan = readChatRequest(request.body as ChatCompletionRequest, header(request, 'x-session-id'), deps.config.maxMessageLength);
  const { run, launched } = await startOpenAIRun(request, reply, deps, principal, plan, (agent, runId) => beginTurn(plan, agent, principal, runId, deps));
  const encoding: ChatEncoding = {
    // The run id names the completion too: X-Run-Id and GET /api/v1/agent/runs/{id} find it.
    id: `chatcmpl-${run.id.slice(4)}`,
    created: Math.floor(Date.now() / 1000),
    model: plan.agent,
    clientTools: new Set(plan.clientTools.map((tool) => tool.function.name)),
    includeUsage: plan.includeUsage,
  };
  return plan.stream ? streamChunks(reply, launched, encoding, run.id, deps.config.sseHeartbeatSeconds) : jsonCompletion(reply, launched, encoding);
}

/** Stateless: the client's messages after the agent's instructions. With a session id: the session's history plus the last user message. */
async function beginTurn(plan: ChatPlan, agent: ResolvedAgent, principal: Principal, runId: string, deps: OpenAIRouteDeps): Promise<Turn> {
  if (plan.sessionId === undefined) {
    const context: ChatMessage[] = agent.systemPrompt === undefined ? plan.messages : [{ role: 'system', content: agent.systemPrompt }, ...plan.messages];
    return clientSideTurn(context);
  }
  if (deps.sessions === undefined) {
    throw new ChassisError(400, 'FEATURE_DISABLED', 'Server-side sessions are disabled on this server (ENABLE_PERSISTENCE=false): drop the session id and send the whole conversation', {
      extra: { param: 'metadata' },
    });
  }
  const last = plan.messages[plan.messages.length - 1]!;
  if (last.role !== 'user') throw invalidParam('messages', 'With a session id the last message must be the new user message');
  // As in stateless mode: the agent's instructions, then the client's system message.
  const system = [agent.systemPrompt, plan.messages.find((message) => message.role === 'system')?.content].filter((text) => typeof text === 'string' && text !== '').join('\n\n');
  return deps.sessions.begin({
    principal,
    runId,
    onBusy: 'reject',
    sessionId: plan.sessionId === 'new' ? undefined : plan.sessionId,
    message: last.content,
    // Sets the session's system prompt (as the native system_prompt does); none keeps the stored one.
    systemPrompt: system === '' ? undefined : system,
    model: agent.model,
  });
}

async function jsonCompletion(reply: FastifyReply, launched: LaunchedRun, encoding: ChatEncoding) {
  const result = await completedRun(reply, launched);
  return chatCompletionOf(launched.log.events, encoding, result.usage, result.stopReason);
}

/** Chat Completions chunks over the run log; an error frame carries the status the run failed with. */
function streamChunks(reply: FastifyReply, launched: LaunchedRun, encoding: ChatEncoding, runId: string, heartbeatSeconds: number): Promise<void> {
  const encoder = new ChunkEncoder(encoding);
  return streamFrames(reply, launched, runId, heartbeatSeconds, (event) => encoder.frames(event, launched.log.end?.error?.status));
}
