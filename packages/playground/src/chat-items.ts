import type { StoredMessage, StreamEvent } from '@agent-chassis/client';

export interface ToolCallView {
  id: string;
  name: string;
  arguments: string;
  result?: string;
}

export interface ApprovalView {
  approvalId: string;
  toolCallId: string;
  name: string;
  arguments: string;
  expiresAt: string;
  decision?: 'approve' | 'deny' | 'pending';
}

/** One bubble on the page: a stored message or the answer being streamed. */
export interface ChatItem {
  key: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  reasoning: string;
  toolCalls: ToolCallView[];
  approvals: ApprovalView[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  error?: { detail: string; code: string; retryAfterSeconds?: number | null };
  streaming: boolean;
  runId?: string;
  seq?: number;
}

let counter = 0;
export const newKey = () => `item-${++counter}`;

export function emptyItem(role: ChatItem['role'], content = ''): ChatItem {
  return { key: newKey(), role, content, reasoning: '', toolCalls: [], approvals: [], streaming: false };
}

/**
 * Stored messages as bubbles: an assistant message's tool calls carry the results of the tool
 * messages that follow it (as the live stream shows them), so tool results get no bubble of their own.
 */
export function itemsFromHistory(messages: readonly StoredMessage[]): ChatItem[] {
  const items: ChatItem[] = [];
  const calls = new Map<string, ToolCallView>();
  for (const message of messages) {
    if (message.role === 'tool') {
      const call = message.tool_call_id === undefined ? undefined : calls.get(message.tool_call_id);
      if (call !== undefined) {
        call.result = message.content ?? '';
        continue;
      }
    }
    const item = emptyItem(message.role as ChatItem['role'], message.content ?? '');
    item.seq = message.seq;
    for (const toolCall of message.tool_calls ?? []) {
      const view = { id: toolCall.id, name: toolCall.function.name, arguments: toolCall.function.arguments };
      calls.set(toolCall.id, view);
      item.toolCalls.push(view);
    }
    items.push(item);
  }
  return items;
}

/** Folds one stream event into the answer being built (a new object, so the view re-renders). */
export function applyEvent(item: ChatItem, event: StreamEvent): ChatItem {
  switch (event.type) {
    case 'run_started':
      return { ...item, runId: event.run_id };
    case 'content':
      return { ...item, content: item.content + event.content };
    case 'reasoning':
      return { ...item, reasoning: item.reasoning + event.content };
    case 'tool_call':
      return { ...item, toolCalls: [...item.toolCalls, { id: event.id, name: event.name, arguments: event.arguments }] };
    case 'tool_result':
      return { ...item, toolCalls: item.toolCalls.map((call) => (call.id === event.id ? { ...call, result: event.result } : call)) };
    case 'approval_required':
      return {
        ...item,
        approvals: [
          ...item.approvals,
          { approvalId: event.approval_id, toolCallId: event.tool_call_id, name: event.name, arguments: event.arguments, expiresAt: event.expires_at },
        ],
      };
    case 'approval_decided':
      return { ...item, approvals: item.approvals.map((approval) => (approval.approvalId === event.approval_id ? { ...approval, decision: event.decision } : approval)) };
    case 'done':
      return { ...item, usage: event.usage, streaming: false };
    case 'error':
      return { ...item, error: { detail: event.detail, code: event.code }, streaming: false };
    default:
      return item;
  }
}

/** Pretty JSON for tool arguments when they parse; the raw text otherwise. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
