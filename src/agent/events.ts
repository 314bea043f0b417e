import type { ChatMessage, Usage } from '../model/types.js';
import type { Checkpoint } from './run-agent.js';

/** `tool_calls`: the model called a client-side tool; the run stops and hands the call to the client. */
export type StopReason = 'stop' | 'length' | 'max_steps' | 'content_filter' | 'cancelled' | 'approval_required' | 'tool_calls';

/**
 * What one agent run produces, in order. The JSON answer is a fold over these and the SSE stream
 * writes them out, so the two transports cannot disagree. Failures are thrown, not emitted: the
 * transport turns the one thrown error into its single terminal `error`.
 */
export type AgentEvent = StepEvent | RunEnding;

/** What happens along the way: emitted as it happens. */
export type StepEvent =
  | { type: 'content'; content: string }
  | { type: 'reasoning'; content: string }
  | { type: 'tool_call'; id: string; name: string; arguments: string }
  | { type: 'tool_result'; id: string; name: string; result: string };

/** How the loop ended (what it returns; it comes after every step event). */
export type RunEnding =
  /** The run stops here until every call in `checkpoint.pending` is decided. */
  | { type: 'paused'; checkpoint: Checkpoint }
  | { type: 'done'; stopReason: StopReason; usage: Usage; messages: ChatMessage[] };

export const emptyUsage = (): Usage => ({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });

export function addUsage(total: Usage, more: Usage | null): void {
  if (more === null) return;
  total.prompt_tokens += more.prompt_tokens;
  total.completion_tokens += more.completion_tokens;
  total.total_tokens += more.total_tokens;
}
