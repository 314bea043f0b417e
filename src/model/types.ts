/** Messages, tool specs and usage in the OpenAI chat-completions shape: the lingua franca of every provider we target. */

import type { RunSignal } from '../run-signal.js';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type SystemMessage = { role: 'system'; content: string; name?: string };
export type UserMessage = { role: 'user'; content: string; name?: string };
export type AssistantMessage = { role: 'assistant'; content: string | null; tool_calls?: ToolCall[]; name?: string };
export type ToolMessage = { role: 'tool'; content: string; tool_call_id: string; name?: string };
export type ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ToolSpec {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | (string & {});

export interface ModelRequest {
  model: string;
  messages: readonly ChatMessage[];
  tools: readonly ToolSpec[];
  temperature?: number;
  maxTokens?: number;
  /** OpenAI `response_format` (structured output), sent as given; absent = plain text. */
  responseFormat?: Record<string, unknown>;
  /** Ask the provider for a stream of deltas (the client sees tokens as they come) or for one answer. */
  stream: boolean;
  signal: RunSignal;
}

export type ModelDelta =
  | { type: 'content'; text: string }
  | { type: 'reasoning'; text: string }
  | { type: 'end'; message: AssistantMessage; finishReason: FinishReason; usage: Usage | null };

/**
 * One model call. Yields the deltas as they arrive, a batch per provider packet (never empty; a
 * packet often carries many tokens, and a batch costs one async step instead of one per token),
 * the last batch ending with exactly one `end`; throws ChassisError on failure.
 */
export interface ModelClient {
  call(request: ModelRequest): AsyncIterable<readonly ModelDelta[]>;
  close(): Promise<void>;
}
