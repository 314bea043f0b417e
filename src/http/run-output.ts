import type { FastifyReply } from 'fastify';
import type { RunOutcome } from '../agent/index.js';
import type { RunView } from '../runs/index.js';
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

/** Writes a run's events after `afterSeq` as SSE (`id: run_id:seq`), following live until its terminal event. */
export async function streamEvents(
  reply: FastifyReply,
  runId: string,
  source: Pick<RunView, 'follow'>,
  afterSeq: number,
  heartbeatSeconds: number,
  onLeave?: () => void,
): Promise<void> {
  const sse = new SseWriter(reply, heartbeatSeconds, { 'x-run-id': runId });
  const left = new AbortController();
  let followed = false;
  sse.onClose(() => {
    // A stream closes after its last event too: only a client that left early stops anything.
    if (followed) return;
    // With a reason: abort() without one builds a DOMException and its stack trace.
    left.abort(CLIENT_LEFT);
    onLeave?.();
  });
  try {
    follow: for await (const { firstSeq, events } of source.follow(afterSeq, left.signal)) {
      for (let index = 0; index < events.length; index++) {
        if (sse.closed) break follow;
        const backPressure = sse.send(events[index]!, `${runId}:${firstSeq + index}`);
        if (backPressure !== undefined) await backPressure;
      }
    }
    followed = !sse.closed;
  } finally {
    sse.end();
  }
}
