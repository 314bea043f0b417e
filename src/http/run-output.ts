import type { FastifyReply } from 'fastify';
import type { RunOutcome } from '../agent/index.js';
import { RunStop } from '../run-signal.js';
import type { RunEvent, RunView } from '../runs/index.js';
import { SseWriter } from './sse.js';

/** The JSON answer of a completed run. */
export function answer(outcome: Pick<RunOutcome, 'content' | 'stopReason' | 'toolCalls' | 'usage'>, runId: string, sessionId: string | null) {
  return {
    role: 'assistant' as const,
    content: outcome.content,
    session_id: sessionId,
    run_id: runId,
    stop_reason: outcome.stopReason ?? 'stop',
    ...(outcome.toolCalls.length > 0 ? { tool_calls: outcome.toolCalls } : {}),
    usage: outcome.usage,
  };
}

const CLIENT_LEFT = 'client left';

/**
 * Writes a run's events after `afterSeq` as SSE, following live until its terminal event. `write`
 * is the surface's encoder (native events with `id: run_id:seq`, OpenAI chunks, …); it returns the
 * writer's back-pressure promise when the socket is full. A client that leaves early stops the
 * follow and calls `onLeave`.
 */
export async function pipeRunToSse(
  reply: FastifyReply,
  runId: string,
  source: Pick<RunView, 'follow'>,
  afterSeq: number,
  heartbeatSeconds: number,
  onLeave: (() => void) | undefined,
  write: (sse: SseWriter, event: RunEvent, seq: number) => Promise<void> | undefined,
): Promise<void> {
  const sse = new SseWriter(reply, heartbeatSeconds, { 'x-run-id': runId });
  const left = new RunStop();
  let followed = false;
  sse.onClose(() => {
    // A stream closes after its last event too: only a client that left early stops anything.
    if (followed) return;
    left.abort(CLIENT_LEFT);
    onLeave?.();
  });
  try {
    follow: for await (const { firstSeq, events } of source.follow(afterSeq, left)) {
      for (let index = 0; index < events.length; index++) {
        if (sse.closed) break follow;
        const backPressure = write(sse, events[index]!, firstSeq + index);
        if (backPressure !== undefined) await backPressure;
      }
    }
    followed = !sse.closed;
  } finally {
    sse.end();
  }
}

/** The native surface: each run event as it is, with `id: run_id:seq` for Last-Event-ID. */
export function streamEvents(
  reply: FastifyReply,
  runId: string,
  source: Pick<RunView, 'follow'>,
  afterSeq: number,
  heartbeatSeconds: number,
  onLeave?: () => void,
): Promise<void> {
  return pipeRunToSse(reply, runId, source, afterSeq, heartbeatSeconds, onLeave, (sse, event, seq) => sse.send(event, `${runId}:${seq}`));
}
