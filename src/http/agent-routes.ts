import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { cancelledError, clientSideTurn, driveRun, newRunId, type AgentRunInput, type Run, type RunOutcome, type RunTracker, type SessionTurns, type Turn } from '../agent/index.js';
import type { Config } from '../config.js';
import { badRequest, ChassisError } from '../errors.js';
import type { ChatMessage, ModelClient } from '../model/index.js';
import type { Principal } from '../principal.js';
import type { IdempotencyStore, RunRegistry, StoredResponse } from '../runs/index.js';
import type { Observability } from '../observability/index.js';
import type { ToolRegistry, ToolSelection } from '../tools/index.js';
import { completionSchemas, ErrorResponse, type CompletionRequest } from './agent-schemas.js';
import { errorBody, logError } from './error-handler.js';
import { idempotencyClaim, replayIdempotent, type IdempotencyClaim } from './idempotent-replay.js';
import type { IdentityResolver } from './identity.js';
import { answer, streamEvents } from './run-output.js';

export interface AgentRouteDeps {
  config: Config;
  model: ModelClient;
  tools: ToolRegistry;
  runs: RunTracker;
  registry: RunRegistry;
  idempotency: IdempotencyStore;
  identity: IdentityResolver;
  /** Absent when ENABLE_PERSISTENCE=false: server-side mode then answers 400. */
  sessions?: SessionTurns;
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
        tags: ['agent'],
        summary: 'Run the agent loop with tool calling (JSON, or SSE with "stream": true)',
        body: schemas.CompletionRequest,
        response: { 200: schemas.CompletionResponse, '4xx': ErrorResponse, '5xx': ErrorResponse },
      },
    },
    async (request, reply) => {
      const principal = await deps.identity(request);
      const body = request.body;
      checkCompletionRequest(body, config);
      const tools = deps.tools.select(body.allowed_tools);
      const claim = idempotencyClaim(request, principal, body);
      const runId = newRunId();
      if (claim !== null) {
        const existing = await deps.idempotency.claim(claim.scope, claim.key, claim.fingerprint, runId);
        if (existing !== null) return replayIdempotent(reply, existing, claim.fingerprint, body.stream === true, deps.registry, config.sseHeartbeatSeconds);
      }
      let run: Run | undefined;
      let turn: Turn;
      try {
        run = deps.runs.start(runId);
        turn = await beginTurn(body, principal, runId, deps);
      } catch (error) {
        run?.end();
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
    { schema: { tags: ['agent'], summary: 'Tools the agent can use (names for allowed_tools)' } },
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

async function beginTurn(body: CompletionRequest, principal: Principal, runId: string, deps: AgentRouteDeps): Promise<Turn> {
  if (body.messages !== undefined) {
    const context = body.messages as ChatMessage[];
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
  });
}

function runInput(prepared: PreparedRun, deps: AgentRouteDeps): AgentRunInput {
  const { body, turn, run, tools } = prepared;
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

const disconnected = () => new ChassisError(499, 'CLIENT_DISCONNECTED', 'The client disconnected');

/** Starts the run detached from this request; JSON and SSE then read the same run log. */
function startRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, principal: Principal, deps: AgentRouteDeps) {
  const { run, turn } = prepared;
  const log = deps.registry.create(
    { runId: run.id, ownerId: principal.userId, sessionId: turn.sessionId, createdAt: Date.now() },
    () => run.abort(cancelledError()),
  );
  reply.header('x-run-id', run.id);
  // Sent before any event, so a streaming client that drops off can still find its session.
  if (turn.sessionId !== null) reply.header('x-session-id', turn.sessionId);
  const { claim } = prepared;
  const input = runInput(prepared, deps);
  const drive = () =>
    driveRun({
      run,
      turn,
      log,
      input,
      deps: { model: deps.model, tools: deps.tools, maxSteps: deps.config.maxAgentSteps },
      warn: (error, message) => request.log.warn({ err: error, runId: run.id }, message),
    });
  const facts = { runId: run.id, sessionId: turn.sessionId, model: input.model, agent: null, stream: input.stream };
  const outcome = (deps.observe === undefined ? drive() : deps.observe(request, facts, drive)).then(async (result) => {
    // Stored before the JSON answer goes out, so a retry after it always finds the outcome.
    if (claim !== null) {
      await deps.idempotency
        .complete(claim.scope, claim.key, responseOf(result, run.id, turn.sessionId))
        .catch((error: unknown) => request.log.warn({ err: error, runId: run.id }, 'could not store the idempotent response'));
    }
    return result;
  });
  // Nobody could read a client-side run's result once its client has gone: stop it (and the provider call).
  const onLeave = turn.continueOnDisconnect ? undefined : () => run.abort(disconnected());
  return { log, outcome, onLeave };
}

async function jsonRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, principal: Principal, deps: AgentRouteDeps) {
  const { outcome, onLeave } = startRun(request, reply, prepared, principal, deps);
  if (onLeave !== undefined) {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) onLeave();
    });
  }
  const result = await outcome;
  if (result.status !== 'completed') throw result.error;
  return answer(result, prepared.run.id, prepared.turn.sessionId);
}

function responseOf(outcome: RunOutcome, runId: string, sessionId: string | null): StoredResponse {
  if (outcome.status === 'completed') return { status: 200, body: answer(outcome, runId, sessionId) };
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
