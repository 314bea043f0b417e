import type { FastifyReply, FastifyRequest } from 'fastify';
import { cancelledError, driveRun, type AgentRunInput, type Run, type RunOutcome, type Turn } from '../agent/index.js';
import { ChassisError } from '../errors.js';
import type { ModelClient } from '../model/index.js';
import type { Principal } from '../principal.js';
import type { RunLog, RunRegistry } from '../runs/index.js';
import type { ToolRegistry } from '../tools/index.js';
import type { ApprovalService, RunSettings } from '../approvals/index.js';
import type { Observability } from '../observability/index.js';

export interface LaunchDeps {
  model: ModelClient;
  tools: ToolRegistry;
  registry: RunRegistry;
  /** Lets a run stop for tool approvals (and be cancelled while it waits); without it a run cannot pause. */
  approvals?: ApprovalService;
  /** Metrics and traces around the run (absent when both are off). */
  observe?: Observability['run'];
}

export interface LaunchedRun {
  log: RunLog;
  outcome: Promise<RunOutcome>;
  /** Call when the client leaves early; undefined when the run should go on (a session keeps its result). */
  onLeave: (() => void) | undefined;
}

/** For a JSON answer: a client that hangs up before the answer is written stops the run (when `onLeave` says so). */
export function stopOnLeave(reply: FastifyReply, onLeave: (() => void) | undefined): void {
  if (onLeave === undefined) return;
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) onLeave();
  });
}

const disconnected = () => new ChassisError(499, 'CLIENT_DISCONNECTED', 'The client disconnected');

/**
 * Starts a run detached from the request that asked for it: every surface (the native API, the
 * OpenAI-compatible one) then reads the same run log, so none of them is a second loop.
 */
export function launchRun(
  request: FastifyRequest,
  reply: FastifyReply,
  started: { run: Run; turn: Turn; input: AgentRunInput; principal: Principal; settings: RunSettings; agentName: string | null },
  deps: LaunchDeps,
): LaunchedRun {
  const { run, turn } = started;
  const { approvals } = deps;
  const log = deps.registry.create(
    { runId: run.id, ownerId: started.principal.userId, sessionId: turn.sessionId, createdAt: Date.now() },
    // While the run waits for approvals (or after it resumed) the approvals service knows how to stop it.
    () => {
      if (approvals === undefined || !approvals.cancel(run.id)) run.abort(cancelledError());
    },
  );
  reply.header('x-run-id', run.id);
  // Sent before any event, so a streaming client that drops off can still find its session.
  if (turn.sessionId !== null) reply.header('x-session-id', turn.sessionId);
  const drive = () =>
    driveRun({
      run,
      turn,
      log,
      input: started.input,
      deps: { model: deps.model, tools: deps.tools, maxSteps: started.settings.maxSteps },
      warn: (error, message) => request.log.warn({ err: error, runId: run.id }, message),
      // Stored with a run that waits for approvals, so it resumes with the same limits and answer check.
      onPause: approvals?.pauser(log, started.input, turn, started.settings),
    });
  const facts = { runId: run.id, sessionId: turn.sessionId, model: started.input.model, agent: started.agentName, stream: started.input.stream };
  const outcome = deps.observe === undefined ? drive() : deps.observe(request, facts, drive);
  // Nobody could read a client-side run's result once its client has gone: stop it (and the provider call).
  const onLeave = turn.continueOnDisconnect ? undefined : () => run.abort(disconnected());
  return { log, outcome, onLeave };
}
