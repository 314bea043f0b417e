import { ChassisError } from '../errors.js';
import type { ToolCall, Usage } from '../model/types.js';
import { answerOf, type RunLog } from '../runs/run-log.js';
import type { StopReason } from './events.js';
import { completeMessages, newProgress, runAgent, type AgentDeps, type AgentRunInput, type Checkpoint, type Resume } from './run-agent.js';
import type { Run } from './run-tracker.js';
import type { Turn } from './turn.js';

export interface RunOutcome {
  /** `waiting`: paused for approvals (`pending` lists them); the run goes on once they are decided. */
  status: 'completed' | 'failed' | 'cancelled' | 'waiting';
  content: string;
  toolCalls: ToolCall[];
  usage: Usage;
  stopReason: StopReason | null;
  error: ChassisError | null;
  pending?: Array<Record<string, unknown>>;
}

export const cancelledError = () => new ChassisError(409, 'RUN_CANCELLED', 'The run was cancelled');

/**
 * Runs the agent loop to its end, detached from any HTTP request: every event goes into the run's
 * log (which streams and replays read), the turn is committed before `done` is logged, and the log
 * always ends with exactly one terminal event. A failed run persists nothing; a cancelled one keeps
 * the messages it completed (never a tool call without its result).
 */
export interface DriveOptions {
  run: Run;
  turn: Turn;
  log: RunLog;
  input: AgentRunInput;
  deps: AgentDeps;
  /** Told when saving the completed part of a cancelled run fails (the run is reported cancelled anyway). */
  warn(error: unknown, message: string): void;
  /** Going on from a paused step (the log already holds the events before it). */
  resume?: Resume;
  /**
   * The loop stopped for approvals: park the run (record it durably, log `approval_required`,
   * pause the turn) and return the pending approvals as clients see them. Absent = a run that
   * cannot wait, whose pause is an error.
   */
  onPause?(checkpoint: Checkpoint): Promise<Array<Record<string, unknown>>>;
}

export async function driveRun({ run, turn, log, input, deps, warn, resume, onPause }: DriveOptions): Promise<RunOutcome> {
  const base = { run_id: run.id, session_id: turn.sessionId };
  const progress = newProgress();
  let paused = false;
  if (resume === undefined) log.append({ type: 'run_started', ...base });
  try {
    const ending = await runAgent(input, deps, (event) => log.append(event), progress, resume);
    if (ending.type === 'paused') {
      if (onPause === undefined) throw new Error('the run paused for approvals where it cannot wait');
      const pending = await onPause(ending.checkpoint);
      paused = true;
      return { status: 'waiting', ...answerOf(log.events), usage: { ...progress.usage }, stopReason: 'approval_required', error: null, pending };
    }
    await turn.commit({ messages: ending.messages, usage: ending.usage, stopReason: ending.stopReason });
    log.append({ type: 'done', ...base, stop_reason: ending.stopReason, usage: ending.usage });
    log.finish({ status: 'completed', stopReason: ending.stopReason, usage: ending.usage, error: null });
    return { status: 'completed', ...answerOf(log.events), usage: ending.usage, stopReason: ending.stopReason, error: null };
  } catch (thrown) {
    const error = reasonOf(thrown, run);
    const cancelled = error.code === 'RUN_CANCELLED';
    if (cancelled) await saveCompleted(turn, progress.messages, progress.usage).catch((failure: unknown) => warn(failure, 'could not save the completed part of a cancelled run'));
    log.append({ type: 'error', ...base, detail: error.detail, code: error.code });
    const status = cancelled ? 'cancelled' : 'failed';
    log.finish({ status, stopReason: cancelled ? 'cancelled' : null, usage: progress.usage, error: { detail: error.detail, code: error.code, status: error.status } });
    return { status, ...answerOf(log.events), usage: progress.usage, stopReason: cancelled ? 'cancelled' : null, error };
  } finally {
    run.end();
    // A paused turn keeps its session: whoever resumes the run commits or releases it.
    if (!paused) await turn.release();
  }
}

async function saveCompleted(turn: Turn, messages: Parameters<typeof completeMessages>[0], usage: Usage): Promise<void> {
  const complete = completeMessages(messages);
  if (complete.length === 0) return;
  await turn.commit({ messages: complete, usage, stopReason: 'cancelled' });
}

/** An aborted run fails with the reason it was aborted for (cancel, deadline, shutdown, client gone). */
function reasonOf(thrown: unknown, run: Run): ChassisError {
  if (run.signal.aborted && run.signal.reason instanceof ChassisError) return run.signal.reason;
  if (thrown instanceof ChassisError) return thrown;
  return new ChassisError(500, 'INTERNAL_ERROR', 'Internal server error', { cause: thrown });
}
