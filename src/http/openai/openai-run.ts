import type { FastifyReply, FastifyRequest } from 'fastify';
import { newRunId, type AgentRunInput, type Run, type RunOutcome, type RunTracker, type SessionTurns, type Turn } from '../../agent/index.js';
import type { AgentCatalog, AgentDefinition } from '../../agents/catalog.js';
import { resolveAgent, type ResolvedAgent } from '../../agents/resolve-agent.js';
import type { ResponseFormats } from '../../agents/resolve.js';
import type { Config } from '../../config.js';
import { ChassisError } from '../../errors.js';
import type { ModelClient, ToolSpec } from '../../model/index.js';
import type { Observability } from '../../observability/index.js';
import type { Principal } from '../../principal.js';
import type { RunEvent, RunRegistry } from '../../runs/index.js';
import type { StoredResponses } from '../../sessions/index.js';
import type { ToolRegistry } from '../../tools/index.js';
import type { IdentityResolver } from '../identity.js';
import { launchRun, stopOnLeave, type LaunchedRun } from '../launch-run.js';
import { pipeRunToSse } from '../run-output.js';
import type { SseWriter } from '../sse.js';
import { invalidParam } from './errors.js';

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
  /** The Responses API's stored responses (absent with persistence off). */
  responses?: StoredResponses;
  observe?: Observability['run'];
}

/**
 * The model id of the agent every deployment has: the configured model (OPENAI_MODEL) with every
 * server tool and no system prompt of ours. A catalog agent named "default" replaces it.
 */
export const DEFAULT_AGENT = 'default';

/** The agent a `model` names; undefined is the default agent. OpenAI's 404 otherwise. */
export function findAgent(name: string, agents: AgentCatalog): AgentDefinition | undefined {
  const agent = agents.get(name);
  if (agent !== undefined || name === DEFAULT_AGENT) return agent;
  throw new ChassisError(404, 'MODEL_NOT_FOUND', `The model '${name.slice(0, 256)}' does not exist: GET /v1/models lists the agents of this server`, { extra: { param: 'model' } });
}

/** What either OpenAI endpoint asks of a run, in the loop's terms. */
export interface OpenAIRunPlan {
  /** The agent name (`model`). */
  agent: string;
  clientTools: ToolSpec[];
  /** `tool_choice: "none"`: no tool at all, server or client. */
  noTools: boolean;
  stream: boolean;
  temperature?: number;
  maxTokens?: number;
  /** Sent to the provider as given (structured output). */
  responseFormat?: Record<string, unknown>;
}

/**
 * Starts the run an OpenAI request asks for, the same way for Chat Completions and Responses: the
 * agent its `model` names, the request's client tools beside the agent's (never under the same
 * name), the turn the endpoint begins (stateless or a session), launched on the shared run log.
 */
export async function startOpenAIRun(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: OpenAIRouteDeps,
  principal: Principal,
  plan: OpenAIRunPlan,
  beginTurn: (agent: ResolvedAgent, runId: string) => Promise<Turn>,
): Promise<{ run: Run; launched: LaunchedRun }> {
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
    turn = await beginTurn(agent, runId);
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
  return { run, launched };
}

/** A JSON answer's run, completed: a client that hangs up first stops it (when it may), a failure is the HTTP error. */
export async function completedRun(reply: FastifyReply, launched: LaunchedRun): Promise<RunOutcome> {
  stopOnLeave(reply, launched.onLeave);
  const result = await launched.outcome;
  if (result.status !== 'completed') throw result.error;
  return result;
}

/** An OpenAI stream over the run log: each run event becomes the zero or more frames `framesOf` encodes. */
export function streamFrames(reply: FastifyReply, launched: LaunchedRun, runId: string, heartbeatSeconds: number, framesOf: (event: RunEvent) => Frame[]): Promise<void> {
  return pipeRunToSse(reply, runId, launched.log, 0, heartbeatSeconds, launched.onLeave, (sse, event) => writeFrames(sse, framesOf(event)));
}

/** One SSE frame of an OpenAI stream: encoded JSON, with the event's name when the surface sends one. */
export type Frame = string | { event: string; data: string };

/** Synchronous while the socket takes the frames; a promise only when it is full (back-pressure). */
function writeFrames(sse: SseWriter, frames: readonly Frame[], from = 0): Promise<void> | undefined {
  for (let index = from; index < frames.length; index++) {
    if (sse.closed) return undefined;
    const frame = frames[index]!;
    const backPressure = typeof frame === 'string' ? sse.sendData(frame) : sse.sendData(frame.data, frame.event);
    if (backPressure !== undefined) return backPressure.then(() => writeFrames(sse, frames, index + 1));
  }
  return undefined;
}
