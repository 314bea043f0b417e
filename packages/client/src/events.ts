type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };

/**
 * The events of a run's SSE stream (README "The agent API" and "Runs"). OpenAPI 3.0 cannot
 * describe an event stream, so these are written by hand; every one also arrives with an
 * `id: <run_id>:<seq>` the stream uses to resume. Unknown types from a newer server pass
 * through unchanged (ignore what you do not know).
 */
export type StreamEvent =
  | { type: 'run_started'; run_id: string; session_id: string | null }
  | { type: 'content'; content: string }
  | { type: 'reasoning'; content: string }
  | { type: 'tool_call'; id: string; name: string; arguments: string }
  | { type: 'tool_result'; id: string; name: string; result: string }
  /** A tool call waits for a person: decide with `client.decideApproval(run_id, approval_id, ...)`. */
  | { type: 'approval_required'; run_id?: string; approval_id: string; tool_call_id: string; name: string; arguments: string; expires_at: string }
  | { type: 'approval_decided'; approval_id: string; decision: 'approve' | 'deny'; tool_call_id?: string; name?: string; reason?: string | null }
  | { type: 'done'; run_id: string; session_id: string | null; stop_reason: string; usage: Usage }
  | { type: 'error'; run_id?: string; detail: string; code: string };

export type TerminalEvent = Extract<StreamEvent, { type: 'done' | 'error' }>;

export const isTerminal = (event: StreamEvent): event is TerminalEvent => event.type === 'done' || event.type === 'error';
