import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { clientSideTurn, newRunId, type AgentRunInput, type Run, type RunTracker, type SessionTurns, type Turn } from '../../agent/index.js';
import type { AgentCatalog, AgentDefinition } from '../../agents/catalog.js';
import { resolveAgent, type ResolvedAgent } from '../../agents/resolve-agent.js';
import type { ResponseFormats } from '../../agents/resolve.js';
import type { Config } from '../../config.js';
import { ChassisError } from '../../errors.js';
import type { ChatMessage, ModelClient } from '../../model/index.js';
import type { Principal } from '../../principal.js';
import type { RunRegistry } from '../../runs/index.js';
import type { ToolRegistry } from '../../tools/index.js';
import type { IdentityResolver } from '../identity.js';
import { launchRun, stopOnLeave, type LaunchedRun } from '../launch-run.js';
import type { SseWriter } from '../sse.js';
import { pipeRunToSse } from '../run-output.js';
import type { Observability } from '../../observability/index.js';
import { ChunkEncoder, chatCompletionOf, type ChatEncoding } from './chat-encoder.js';
import { invalidParam, registerOpenAIErrors } from './errors.js';
import { readChatRequest, type ChatPlan } from './request.js';
import { chatSchemas, ModelList, ModelSchema, OpenAIErrorSchema, type ChatCompletionRequest } from './schemas.js';

export interface OpenAIRouteDeps {
  config: Config;
  model: ModelClient;
  tools: ToolRegistry;
  runs: RunTracker;
  registry: RunRegistry;
  identity: IdentityResolver;
  agents: AgentCatalog;
  responseFormats: ResponseFormats;
  sessions?: SessionTurns;
  observe?: Observability['run'];
}

/**
 * The model id of the agent every deployment has: the configured model (OPENAI_MODEL) with every
 * server tool and no system prompt of ours. A catalog agent named "default" replaces it.
 */
export const DEFAULT_AGENT = 'default';

/** `/v1` is canonical (what a client's base URL ends with); the same routes answer under `/api/v1/openai/v1`. */
export const OPENAI_PREFIXES = ['/v1', '/api/v1/openai/v1'] as const;

/**
 * The OpenAI-compatible surface: Chat Completions and the model list, each an encoder over the
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
          404: error('Unknown model (code model_not_found) or session'),
          429: error('API_RATE_LIMIT_PER_MINUTE reached (Retry-After says when to retry)'),
          500: error('Internal server error (details only in the server log)'),
          502: error('The model failed (upstream error)'),
          503: error('Server busy, shutting down, or the model is not configured'),
          504: error('The model timed out'),
        };
        const requestErrors = {
          400: error('Invalid or unsupported request field (param names it)'),
          409: error('The session is busy with another run'),
          413: error('Request body too large'),
        };
        // Bearer (the API key or an access token, as OpenAI clients send it), X-API-Key, or none on an open server.
        const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }, {}];
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
      },
      { prefix },
    );
  }
}

function modelObject(id: string, created: number) {
  return { id, object: 'model' as const, created, owned_by: 'agent-chassis' };
}

/** The agent a `model` names; undefined is the default agent. OpenAI's 404 otherwise. */
function findAgent(name: string, agents: AgentCatalog): AgentDefinition | undefined {
  const agent = agents.get(name);
  if (agent !== undefined || name === DEFAULT_AGENT) return agent;
  throw new ChassisError(404, 'MODEL_NOT_FOUND', `The model '${name.slice(0, 256)}' does not exist: GET /v1/models lists the agents of this server`, { extra: { param: 'model' } });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function chatCompletion(request: FastifyRequest, reply: FastifyReply, deps: OpenAIRouteDeps) {
  const principal = await deps.identity(request);
  // Validated against schemas.ChatCompletionRequest before the handler runs.
  const plan = readChatRequest(request.body as ChatCompletionRequest, header(request, 'x-session-id'), deps.config.maxMessageLength);
  const agent = resolveAgent(
    findAgent(plan.agent, deps.agents),
    deps.tools,
    { model: deps.config.openaiModel, maxSteps: deps.config.maxAgentSteps },
    deps.responseFormats,
    { temperature: plan.temperature, maxTokens: plan.maxTokens },
  );
  const serverTools = plan.noTools ? deps.tools.select([]) : agent.tools;
  const clash = plan.clientTools.find((tool) => serverTools.allowed.has(tool.function.name));
  if (clash !== undefined) {
    throw invalidParam('tools', `The tool name "${clash.function.name}" is a server-side tool of this agent: rename the client tool`);
  }
  const runId = newRunId();
  let run: Run | undefined;
  let turn: Turn;
  try {
    run = deps.runs.start(runId);
    turn = await beginTurn(plan, agent, principal, runId, deps);
  } catch (error) {
    run?.end();
    throw error;
  }
  const input: AgentRunInput = {
    context: turn.context,
    model: agent.model,
    temperature: agent.temperature,
    maxTokens: agent.maxTokens,
    tools: serverTools,
    clientTools: plan.clientTools.length > 0 ? plan.clientTools : undefined,
    // The agent's own format is checked (and repaired) by the loop; a request's goes to the provider.
    responseFormat: agent.responseFormat,
    providerResponseFormat: plan.responseFormat,
    stream: plan.stream,
    signal: run.signal,
  };
  const launched = launchRun(request, reply, { run, turn, input, principal, settings: { maxSteps: agent.maxSteps }, agentName: plan.agent }, deps);
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
  stopOnLeave(reply, launched.onLeave);
  const result = await launched.outcome;
  if (result.status !== 'completed') throw result.error;
  return chatCompletionOf(launched.log.events, encoding, result.usage, result.stopReason);
}

/** The OpenAI surface over the same run log: each run event becomes zero or more chunk frames. */
function streamChunks(reply: FastifyReply, launched: LaunchedRun, encoding: ChatEncoding, runId: string, heartbeatSeconds: number): Promise<void> {
  const { log, onLeave } = launched;
  const encoder = new ChunkEncoder(encoding);
  return pipeRunToSse(reply, runId, log, 0, heartbeatSeconds, onLeave, (sse, event) => writeFrames(sse, encoder.frames(event, log.end?.error?.status)));
}

/** Synchronous while the socket takes the frames; a promise only when it is full (back-pressure). */
function writeFrames(sse: SseWriter, frames: readonly string[], from = 0): Promise<void> | undefined {
  for (let index = from; index < frames.length; index++) {
    if (sse.closed) return undefined;
    const backPressure = sse.sendData(frames[index]!);
    if (backPressure !== undefined) return backPressure.then(() => writeFrames(sse, frames, index + 1));
  }
  return undefined;
}
