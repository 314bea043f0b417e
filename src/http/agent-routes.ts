import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { clientSideTurn, newRunId, type AgentRunInput, type Run, type RunOutcome, type RunTracker, type SessionTurns, type Turn } from '../agent/index.js';
import type { AgentCatalog, AgentDefinition } from '../agents/catalog.js';
import { agentRunSettings, agentSystemPrompt, agentTools, checkAgentOverrides, findAgent, type ResponseFormats } from '../agents/resolve.js';
import type { Config } from '../config.js';
import { badRequest } from '../errors.js';
import type { ChatMessage, ModelClient } from '../model/index.js';
import type { Principal } from '../principal.js';
import type { IdempotencyStore, RunRegistry, StoredResponse } from '../runs/index.js';
import type { Observability } from '../observability/index.js';
import type { ToolRegistry, ToolSelection } from '../tools/index.js';
import { completionSchemas, IdempotencyHeaders, ToolList, type CompletionRequest } from './agent-schemas.js';
import { errorBody, logError } from './error-handler.js';
import { CALLER_SECURITY, COMMON_ERRORS, described, errorResponses, jsonOrStream } from './openapi.js';
import { idempotencyClaim, replayIdempotent, type IdempotencyClaim } from './idempotent-replay.js';
import type { IdentityResolver } from './identity.js';
import type { ApprovalService, RunSettings } from '../approvals/index.js';
import { launchRun, stopOnLeave } from './launch-run.js';
import { answer, streamEvents } from './run-output.js';

export interface AgentRouteDeps {
  config: Config;
  model: ModelClient;
  tools: ToolRegistry;
  runs: RunTracker;
  registry: RunRegistry;
  idempotency: IdempotencyStore;
  identity: IdentityResolver;
  /** Parks runs that stop for tool approvals, and cancels them while they wait. */
  approvals: ApprovalService;
  /** Absent when ENABLE_PERSISTENCE=false: server-side mode then answers 400. */
  sessions?: SessionTurns;
  agents: AgentCatalog;
  responseFormats: ResponseFormats;
  /** Metrics and tracing around each run (a pass-through when both are off). */
  observe?: Observability['run'];
}

interface PreparedRun {
  run: Run;
  turn: Turn;
  tools: ToolSelection;
  body: CompletionRequest;
  claim: IdempotencyClaim | null;
}

export function registerAgentRoutes(app: FastifyInstance, deps: AgentRouteDeps): void {
  const { config } = deps;
  const schemas = completionSchemas(config);
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  typed.post(
    '/api/v1/agent/completion',
    {
      schema: {
        operationId: 'createCompletion',
        tags: ['agent'],
        summary: 'Run the agent loop with tool calling (JSON, or SSE with "stream": true)',
        security: CALLER_SECURITY,
        headers: IdempotencyHeaders,
        body: schemas.CompletionRequest,
        response: {
          200: jsonOrStream(schemas.CompletionResponse, 'The answer (JSON), or with "stream": true the run\'s events (X-Run-Id and X-Session-Id headers name the run and session)'),
          ...errorResponses(...COMMON_ERRORS, 404, 409, 413, 415, 502, 504),
        },
      },
    },
    async (request, reply) => {
      const principal = await deps.identity(request);
      const body = request.body;
      checkCompletionRequest(body, config);
      // A named agent is checked before any work; a continued session's own agent after its lease is held.
      const named = body.agent === undefined ? undefined : findAgent(deps.agents, body.agent);
      if (named !== undefined) checkAgentOverrides(named, body);
      // Without a named agent the request's tool choice is checked up front, as always; a continued
      // session that turns out to have an agent narrows again below.
      const early = named === undefined ? deps.tools.select(body.allowed_tools) : undefined;
      const claim = idempotencyClaim(request, principal, body);
      const runId = newRunId();
      if (claim !== null) {
        const existing = await deps.idempotency.claim(claim.scope, claim.key, claim.fingerprint, runId);
        if (existing !== null) return replayIdempotent(reply, existing, claim.fingerprint, body.stream === true, deps.registry, config.sseHeartbeatSeconds);
      }
      let run: Run | undefined;
      let turn: Turn | undefined;
      let tools: ToolSelection;
      try {
        run = deps.runs.start(runId);
        turn = await beginTurn(body, principal, runId, deps, named);
        tools = turn.agent === undefined && early !== undefined ? early : toolsOf(turn.agent, body, deps);
      } catch (error) {
        run?.end();
        await turn?.release();
        // The run never started: a retry with the same key must be free to start it.
        if (claim !== null) await deps.idempotency.release(claim.scope, claim.key);
        throw error;
      }
      const prepared: PreparedRun = { run, turn, tools, body, claim };
      return body.stream === true ? streamRun(request, reply, prepared, principal, deps) : jsonRun(request, reply, prepared, principal, deps);
    },
  );

  typed.get(
    '/api/v1/tools',
    {
      schema: {
        operationId: 'listTools',
        tags: ['agent'],
        summary: 'Tools the agent can use (names for allowed_tools)',
        security: CALLER_SECURITY,
        response: { 200: described(ToolList, 'Every tool: local ones and those of the MCP servers connected so far'), ...errorResponses(...COMMON_ERRORS) },
      },
    },
    async (request) => {
      await deps.identity(request);
      return {
        tools: deps.tools.list().map((tool) => ({
          name: tool.name,
          description: tool.description,
          source: tool.source,
          parameters: tool.parameters,
        })),
      };
    },
  );
}

/** Rules the schema cannot say: exactly one mode, metadata size in bytes, tool messages paired with an id. */
function checkCompletionRequest(body: CompletionRequest, config: Config): void {
  const serverSide = body.message !== undefined || body.session_id !== undefined;
  if (body.messages !== undefined && serverSide) {
    throw badRequest('Use either "messages" (client-side mode) or "message"/"session_id" (server-side mode), not both');
  }
  if (body.messages === undefined && body.message === undefined) {
    throw badRequest(
      body.session_id === undefined
        ? 'Send "messages" (the whole conversation) or "message" (a new user message for a server-side session)'
        : '"message" is required to continue a session',
    );
  }
  if (body.metadata !== undefined) {
    const size = Buffer.byteLength(JSON.stringify(body.metadata), 'utf8');
    if (size > config.maxMetadataSize) {
      throw badRequest(`metadata is ${size} bytes as JSON; the limit is ${config.maxMetadataSize} bytes (MAX_METADATA_SIZE)`);
    }
  }
  body.messages?.forEach((message, index) => {
    if (message.role === 'tool' && !message.tool_call_id) {
      throw badRequest(`messages[${index}]: a tool message needs "tool_call_id"`);
    }
    if (message.content === null && message.role !== 'assistant') {
      throw badRequest(`messages[${index}]: content may be null only for assistant messages`);
    }
    if (message.tool_calls !== undefined && message.role !== 'assistant') {
      throw badRequest(`messages[${index}]: only assistant messages carry tool_calls`);
    }
  });
}

/** The agent's tools narrowed by the request; without an agent, the request's choice as before. */
function toolsOf(agent: AgentDefinition | undefined, body: CompletionRequest, deps: AgentRouteDeps): ToolSelection {
  if (agent === undefined) return deps.tools.select(body.allowed_tools);
  // A continued session's agent: the same override rules as when the request names it.
  checkAgentOverrides(agent, body);
  return agentTools(agent, deps.tools, body.allowed_tools);
}

async function beginTurn(body: CompletionRequest, principal: Principal, runId: string, deps: AgentRouteDeps, agent: AgentDefinition | undefined): Promise<Turn> {
  if (body.messages !== undefined) {
    const context = body.messages as ChatMessage[];
    if (agent !== undefined) return clientSideTurn([{ role: 'system', content: agentSystemPrompt(agent) }, ...context], agent);
    return clientSideTurn(body.system_prompt === undefined ? context : [{ role: 'system', content: body.system_prompt }, ...context]);
  }
  if (deps.sessions === undefined) {
    throw badRequest('Server-side sessions are disabled on this server: set ENABLE_PERSISTENCE=true, or send the whole conversation as "messages"');
  }
  return deps.sessions.begin({
    principal,
    runId,
    onBusy: body.on_busy ?? 'reject',
    sessionId: body.session_id,
    message: body.message!,
    systemPrompt: body.system_prompt,
    model: body.model,
    metadata: body.metadata,
    agent: body.agent,
    findAgent: (name) => findAgent(deps.agents, name),
    agentPrompt: agentSystemPrompt,
  });
}

/** The one place a request (and its agent, resolved once here) becomes what the loop takes. */
function runInput(prepared: PreparedRun, deps: AgentRouteDeps): AgentRunInput {
  const { body, turn, run, tools } = prepared;
  const agent = turn.agent;
  if (agent === undefined) {
    return {
      context: turn.context,
      model: body.model ?? turn.model ?? deps.config.openaiModel,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      tools,
      stream: body.stream === true,
      signal: run.signal,
    };
  }
  return {
    context: turn.context,
    ...agentRunSettings(agent, { temperature: body.temperature, maxTokens: body.max_tokens }, deps.config.openaiModel, deps.responseFormats),
    tools,
    stream: body.stream === true,
    signal: run.signal,
  };
}

/** Starts the run detached from this request; JSON and SSE then read the same run log. */
function startRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, principal: Principal, deps: AgentRouteDeps) {
  const { run, turn, claim } = prepared;
  const input = runInput(prepared, deps);
  const agent = turn.agent;
  const settings: RunSettings = {
    maxSteps: agent?.maxSteps ?? deps.config.maxAgentSteps,
    ...(agent === undefined ? {} : { agent: { name: agent.name, ...(agent.responseFormat === undefined ? {} : { responseFormat: agent.responseFormat }) } }),
  };
  const launched = launchRun(request, reply, { run, turn, input, principal, settings, agentName: agent?.name ?? null }, deps);
  const outcome = launched.outcome.then(async (result) => {
    // Stored before the JSON answer goes out, so a retry after it always finds the outcome.
    if (claim !== null) {
      await deps.idempotency
        .complete(claim.scope, claim.key, responseOf(result, run.id, turn.sessionId))
        .catch((error: unknown) => request.log.warn({ err: error, runId: run.id }, 'could not store the idempotent response'));
    }
    return result;
  });
  return { ...launched, outcome };
}

async function jsonRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, principal: Principal, deps: AgentRouteDeps) {
  const { outcome, onLeave } = startRun(request, reply, prepared, principal, deps);
  stopOnLeave(reply, onLeave);
  const result = await outcome;
  if (result.status !== 'completed' && result.status !== 'waiting') throw result.error;
  return jsonAnswer(result, prepared.run.id, prepared.turn.sessionId);
}

/** A completed run's answer, or a waiting run's so far (stop_reason "approval_required" with the pending approvals). */
function jsonAnswer(outcome: RunOutcome, runId: string, sessionId: string | null) {
  const body = answer(outcome, runId, sessionId);
  return outcome.status === 'waiting' ? { ...body, pending_approvals: outcome.pending ?? [] } : body;
}

function responseOf(outcome: RunOutcome, runId: string, sessionId: string | null): StoredResponse {
  if (outcome.status === 'completed' || outcome.status === 'waiting') return { status: 200, body: jsonAnswer(outcome, runId, sessionId) };
  const error = outcome.error!;
  return { status: error.status, body: errorBody(error) };
}


async function streamRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, principal: Principal, deps: AgentRouteDeps) {
  const { log, outcome, onLeave } = startRun(request, reply, prepared, principal, deps);
  void outcome.then((result) => {
    if (result.error !== null) logError(request.log, result.error);
  });
  await streamEvents(reply, prepared.run.id, log, 0, deps.config.sseHeartbeatSeconds, onLeave);
}
