import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { clientSideTurn, runAgent, type AgentEvent, type Run, type RunTracker, type SessionTurns, type Turn } from '../agent/index.js';
import type { Config } from '../config.js';
import { badRequest, ChassisError } from '../errors.js';
import type { ChatMessage, ModelClient, ToolCall, Usage } from '../model/index.js';
import type { ToolRegistry, ToolSelection } from '../tools/index.js';
import { completionSchemas, ErrorResponse, type CompletionRequest } from './agent-schemas.js';
import { errorBody, toChassisError } from './error-handler.js';
import type { IdentityResolver } from './identity.js';
import { SseWriter } from './sse.js';

export interface AgentRouteDeps {
  config: Config;
  model: ModelClient;
  tools: ToolRegistry;
  runs: RunTracker;
  identity: IdentityResolver;
  /** Absent when ENABLE_PERSISTENCE=false: server-side mode then answers 400. */
  sessions?: SessionTurns;
}

interface PreparedRun {
  run: Run;
  turn: Turn;
  tools: ToolSelection;
  body: CompletionRequest;
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
      const run = deps.runs.start();
      let turn: Turn;
      try {
        turn = await beginTurn(body, principal, deps);
      } catch (error) {
        run.end();
        throw error;
      }
      // Sent before any event, so a streaming client that drops off can still find its session.
      if (turn.sessionId !== null) reply.header('x-session-id', turn.sessionId);
      const prepared: PreparedRun = { run, turn, tools, body };
      return body.stream === true ? streamRun(request, reply, prepared, deps) : jsonRun(reply, prepared, deps);
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

async function beginTurn(body: CompletionRequest, principal: Awaited<ReturnType<IdentityResolver>>, deps: AgentRouteDeps): Promise<Turn> {
  if (body.messages !== undefined) {
    const context = body.messages as ChatMessage[];
    return clientSideTurn(body.system_prompt === undefined ? context : [{ role: 'system', content: body.system_prompt }, ...context]);
  }
  if (deps.sessions === undefined) {
    throw badRequest('Server-side sessions are disabled on this server: set ENABLE_PERSISTENCE=true, or send the whole conversation as "messages"');
  }
  return deps.sessions.begin({
    principal,
    sessionId: body.session_id,
    message: body.message!,
    systemPrompt: body.system_prompt,
    model: body.model,
    metadata: body.metadata,
  });
}

function agentEvents(prepared: PreparedRun, deps: AgentRouteDeps, stream: boolean): AsyncGenerator<AgentEvent> {
  const { body, turn, run, tools } = prepared;
  return runAgent(
    {
      context: turn.context,
      model: body.model ?? turn.model ?? deps.config.openaiModel,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      tools,
      stream,
      signal: run.signal,
    },
    { model: deps.model, tools: deps.tools, maxSteps: deps.config.maxAgentSteps },
  );
}

const disconnected = () => new ChassisError(499, 'CLIENT_DISCONNECTED', 'The client disconnected');

/** A client that leaves stops the run, unless a session keeps its result. */
function stopWhenClientLeaves(reply: FastifyReply, prepared: PreparedRun): void {
  if (prepared.turn.continueOnDisconnect) return;
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) prepared.run.abort(disconnected());
  });
}

async function jsonRun(reply: FastifyReply, prepared: PreparedRun, deps: AgentRouteDeps) {
  const { run, turn } = prepared;
  stopWhenClientLeaves(reply, prepared);
  try {
    let content = '';
    for await (const event of agentEvents(prepared, deps, false)) {
      if (event.type === 'content') content += event.content;
      else if (event.type === 'done') {
        await turn.commit({ messages: event.messages, usage: event.usage, stopReason: event.stopReason });
        return answer(content, turn.sessionId, event.stopReason, event.toolCalls, event.usage);
      }
    }
    throw new Error('agent run ended without a result');
  } catch (error) {
    throw runError(error, run);
  } finally {
    run.end();
    await turn.release();
  }
}

function answer(content: string, sessionId: string | null, stopReason: string, toolCalls: ToolCall[], usage: Usage) {
  return {
    role: 'assistant' as const,
    content,
    session_id: sessionId,
    stop_reason: stopReason,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
    usage,
  };
}

async function streamRun(request: FastifyRequest, reply: FastifyReply, prepared: PreparedRun, deps: AgentRouteDeps) {
  const { run, turn } = prepared;
  const sse = new SseWriter(reply, deps.config.sseHeartbeatSeconds);
  stopWhenClientLeaves(reply, prepared);
  try {
    for await (const event of agentEvents(prepared, deps, true)) {
      if (event.type === 'done') {
        await turn.commit({ messages: event.messages, usage: event.usage, stopReason: event.stopReason });
        await sse.send({ type: 'done', session_id: turn.sessionId, stop_reason: event.stopReason, usage: event.usage });
      } else {
        await sse.send(event);
      }
    }
  } catch (error) {
    const mapped = runError(error, run);
    if (mapped.status >= 500 && mapped.code !== 'SHUTTING_DOWN') request.log.error({ err: mapped.cause ?? mapped, code: mapped.code }, mapped.detail);
    else request.log.info({ code: mapped.code }, mapped.detail);
    await sse.send({ type: 'error', ...errorBody(mapped) });
  } finally {
    sse.end();
    run.end();
    await turn.release();
  }
}

/** An aborted run fails with the reason it was aborted for (deadline, shutdown, client gone). */
function runError(error: unknown, run: Run): ChassisError {
  if (run.signal.aborted && run.signal.reason instanceof ChassisError) return run.signal.reason;
  return toChassisError(error);
}
