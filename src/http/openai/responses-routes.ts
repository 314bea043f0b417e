import type { FastifyReply, FastifyRequest } from 'fastify';
import { clientSideTurn, type Turn, type TurnResult } from '../../agent/index.js';
import type { ResolvedAgent } from '../../agents/resolve-agent.js';
import { ChassisError } from '../../errors.js';
import type { ChatMessage } from '../../model/index.js';
import type { Principal } from '../../principal.js';
import type { RunLog } from '../../runs/index.js';
import type { StoredResponse } from '../../sessions/index.js';
import type { LaunchedRun } from '../launch-run.js';
import { invalidParam } from './errors.js';
import { completedRun, startOpenAIRun, streamFrames, type OpenAIRouteDeps } from './openai-run.js';
import { readResponsesRequest, type ResponsesPlan } from './responses-request.js';
import { ResponseEncoder, responseOf, type ResponseEncoding } from './responses-encoder.js';
import { responsesSchemas, type ResponseCreateRequest } from './responses-schemas.js';

/** How the surface documents its routes: shared by every OpenAI route of one prefix. */
export interface SurfaceDocs {
  hide: boolean;
  security: Array<Record<string, string[]>>;
  /** Errors any route of the surface answers. */
  errors: Record<number, object>;
  /** Errors of routes that take a body and start runs. */
  requestErrors: Record<number, object>;
}

interface Routes {
  post(path: string, options: object, handler: (request: FastifyRequest, reply: FastifyReply) => unknown): unknown;
  get(path: string, options: object, handler: (request: FastifyRequest, reply: FastifyReply) => unknown): unknown;
}

const notStored = () =>
  new ChassisError(404, 'RESPONSE_NOT_FOUND', 'Responses are not stored on this server (ENABLE_PERSISTENCE=false): nothing can be read back', {
    extra: { param: 'response_id' },
  });

/**
 * The Responses API: `POST /responses` runs the agent `model` names, as Chat Completions does, and
 * answers with a `response` object or its event stream; `GET /responses/{id}` reads a stored one.
 * A stored response is a point in a server-side session, so `previous_response_id` continues that
 * session (on any instance) and only those who may use the session may read or continue it.
 */
export function registerResponsesRoutes(routes: Routes, deps: OpenAIRouteDeps, docs: SurfaceDocs): void {
  const schemas = responsesSchemas(deps.config);
  const { hide, security, errors, requestErrors } = docs;
  routes.post(
    '/responses',
    {
      config: { bearerApiKey: true },
      schema: {
        hide,
        operationId: 'openaiCreateResponse',
        tags: ['openai'],
        summary: 'OpenAI Responses: run an agent as a model (JSON, or Responses events with "stream": true)',
        security,
        body: schemas.ResponseCreateRequest,
        response: { 200: schemas.ResponseObject, ...requestErrors, ...errors },
      },
    },
    (request, reply) => createResponse(request, reply, deps),
  );
  routes.get(
    '/responses/:response_id',
    {
      config: { bearerApiKey: true },
      schema: {
        hide,
        operationId: 'openaiRetrieveResponse',
        tags: ['openai'],
        summary: 'A stored response (404 when it is not yours, or with persistence off)',
        security,
        params: { type: 'object', properties: { response_id: { type: 'string', maxLength: 128 } }, required: ['response_id'] } as const,
        response: { 200: schemas.ResponseObject, ...errors },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      if (deps.responses === undefined) throw notStored();
      const { response_id: id } = request.params as { response_id: string };
      return (await deps.responses.find(principal, id, 'read')).body;
    },
  );
}

async function createResponse(request: FastifyRequest, reply: FastifyReply, deps: OpenAIRouteDeps) {
  const principal = await deps.identity(request);
  // Validated against schemas.ResponseCreateRequest before the handler runs.
  const plan = readResponsesRequest(request.body as ResponseCreateRequest, deps.config.maxMessageLength);
  const previous = plan.previousResponseId === null ? undefined : await previousResponse(plan, principal, deps);
  const input = previous === undefined ? plan.input : continuationInput(previous, plan.input);
  const store = plan.store && deps.sessions !== undefined && deps.responses !== undefined;
  let encoding: ResponseEncoding | undefined;
  let log: RunLog | undefined;
  const { run, launched } = await startOpenAIRun(request, reply, deps, principal, plan, (agent, runId) => {
    encoding = encodingOf(plan, runId, store);
    const saved = encoding;
    // Stored with the turn, in its transaction: the commit comes after the run's first model call, long after `log` is set below.
    return beginTurn({ plan, input, agent, principal, runId, deps, store, previous }, (result) => ({
      id: saved.id,
      body: responseOf(log!.events, saved, result.stopReason, result.usage),
    }));
  });
  log = launched.log;
  return plan.stream ? streamResponse(reply, launched, encoding!, run.id, deps.config.sseHeartbeatSeconds) : jsonResponse(reply, launched, encoding!);
}

function encodingOf(plan: ResponsesPlan, runId: string, store: boolean): ResponseEncoding {
  return {
    // The run id names the response too: X-Run-Id and GET /api/v1/agent/runs/{id} find it.
    id: `resp_${runId.slice(4)}`,
    createdAt: Math.floor(Date.now() / 1000),
    model: plan.agent,
    clientTools: new Set(plan.clientTools.map((tool) => tool.function.name)),
    instructions: plan.instructions,
    previousResponseId: plan.previousResponseId,
    store,
    metadata: plan.metadata,
    maxOutputTokens: plan.maxOutputTokens,
    temperature: plan.temperature ?? null,
    toolChoice: plan.noTools ? 'none' : 'auto',
    tools: plan.tools,
    textFormat: plan.textFormat,
  };
}

/** The response a request continues, if the caller may continue its session (else 404). */
async function previousResponse(plan: ResponsesPlan, principal: Principal, deps: OpenAIRouteDeps): Promise<StoredResponse> {
  if (deps.responses === undefined || deps.sessions === undefined) {
    throw new ChassisError(400, 'FEATURE_DISABLED', 'previous_response_id needs stored responses, and this server keeps none (ENABLE_PERSISTENCE=false): send the whole conversation as input', {
      extra: { param: 'previous_response_id' },
    });
  }
  if (!plan.store) {
    throw invalidParam('store', 'store: false cannot be combined with previous_response_id: continuing a stored conversation stores the new turn in it');
  }
  return deps.responses.find(principal, plan.previousResponseId!, 'continue');
}

/**
 * The new messages of a continuation. When the previous response ended with calls to client tools,
 * the input must carry exactly their outputs, and they go first: the model expects a call's result
 * right after it.
 */
function continuationInput(previous: StoredResponse, input: readonly ChatMessage[]): ChatMessage[] {
  const output = Array.isArray(previous.body.output) ? (previous.body.output as Array<Record<string, unknown>>) : [];
  const pending = new Set(output.filter((item) => item.type === 'function_call').map((item) => String(item.call_id)));
  const results = input.filter((message) => message.role === 'tool');
  for (const result of results) {
    if (!pending.delete(result.tool_call_id)) {
      throw invalidParam('input', `No function call with call_id '${result.tool_call_id.slice(0, 256)}' is waiting in the previous response`);
    }
  }
  if (pending.size > 0) {
    throw invalidParam('input', `The previous response ended with function calls: send a function_call_output for each (missing: ${[...pending].join(', ').slice(0, 1024)})`);
  }
  return [...results, ...input.filter((message) => message.role !== 'tool')];
}

/**
 * Stateless (store: false, or persistence off): the agent's instructions and the request's, then
 * the input. Stored: a new session, or the previous response's session while it ends there. The
 * instructions are this turn's system prompt only (as OpenAI's do not carry over to a continuation).
 */
interface TurnStart {
  plan: ResponsesPlan;
  /** The new messages (a continuation's function results first). */
  input: ChatMessage[];
  agent: ResolvedAgent;
  principal: Principal;
  runId: string;
  deps: OpenAIRouteDeps;
  store: boolean;
  previous: StoredResponse | undefined;
}

function beginTurn(
  { plan, input, agent, principal, runId, deps, store, previous }: TurnStart,
  response: (result: TurnResult) => { id: string; body: Record<string, unknown> },
): Promise<Turn> {
  const system = [agent.systemPrompt, plan.instructions].filter((text) => typeof text === 'string' && text !== '').join('\n\n');
  if (!store) {
    const context: ChatMessage[] = system === '' ? input : [{ role: 'system', content: system }, ...input];
    return Promise.resolve(clientSideTurn(context));
  }
  return deps.sessions!.begin({
    principal,
    runId,
    onBusy: 'reject',
    sessionId: previous?.sessionId,
    input,
    expectedNextSeq: previous?.nextSeq,
    // Always set, even empty: a continuation must not run under an earlier response's instructions.
    systemPrompt: system,
    model: agent.model,
    response,
  });
}

async function jsonResponse(reply: FastifyReply, launched: LaunchedRun, encoding: ResponseEncoding) {
  const result = await completedRun(reply, launched);
  return responseOf(launched.log.events, encoding, result.stopReason, result.usage);
}

/** The Responses events over the same run log. */
function streamResponse(reply: FastifyReply, launched: LaunchedRun, encoding: ResponseEncoding, runId: string, heartbeatSeconds: number): Promise<void> {
  const encoder = new ResponseEncoder(encoding);
  return streamFrames(reply, launched, runId, heartbeatSeconds, (event) => encoder.frames(event));
}
