import type { AssistantMessage, ChatMessage, ModelClient, ToolSpec, Usage } from '../model/types.js';
import type { ToolRegistry, ToolSelection } from '../tools/registry.js';
import { addUsage, emptyUsage, type AgentEvent, type StopReason } from './events.js';
import { runToolCalls } from './run-tools.js';

export interface AgentRunInput {
  /** Everything the model sees first: system prompt, earlier turns, the new user message. */
  context: readonly ChatMessage[];
  model: string;
  temperature?: number;
  maxTokens?: number;
  tools: ToolSelection;
  /**
   * Tools the caller runs itself (OpenAI `tools` of a request), offered beside the server's. When
   * the model calls one, the run stops with `tool_calls` and hands those calls back unrun.
   */
  clientTools?: readonly ToolSpec[];
  responseFormat?: Record<string, unknown>;
  /** Ask the provider for token deltas (SSE clients) or for whole answers (JSON clients). */
  stream: boolean;
  signal: AbortSignal;
}

/** Messages the run has completed so far: what a cancelled run can still save. */
export interface RunProgress {
  messages: ChatMessage[];
  usage: Usage;
}

export const newProgress = (): RunProgress => ({ messages: [], usage: emptyUsage() });

/** The longest prefix with no tool call waiting for its result: safe to store and to send to a provider. */
export function completeMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index]!;
    if (message.role !== 'assistant' || !message.tool_calls?.length) continue;
    const answered = messages.slice(index + 1).filter((later) => later.role === 'tool').length;
    return answered >= message.tool_calls.length ? [...messages] : messages.slice(0, index);
  }
  return [...messages];
}

export interface AgentDeps {
  model: ModelClient;
  tools: ToolRegistry;
  maxSteps: number;
}

/**
 * The agent loop: call the model; if it asks for tools, run them and call it again; stop on an
 * answer without tool calls or after `maxSteps` model calls. Retries live inside one model call,
 * never here, so a tool that ran is never run again.
 */
export async function* runAgent(input: AgentRunInput, deps: AgentDeps, progress: RunProgress = newProgress()): AsyncGenerator<AgentEvent> {
  const transcript: ChatMessage[] = [...input.context];
  const added = progress.messages;
  const usage = progress.usage;
  const clientNames = input.clientTools?.length ? new Set(input.clientTools.map((tool) => tool.function.name)) : null;
  const specs = clientNames === null ? input.tools.specs : [...input.tools.specs, ...input.clientTools!];

  for (let step = 1; ; step++) {
    input.signal.throwIfAborted();
    let answer: AssistantMessage | undefined;
    let finishReason = 'stop';
    for await (const delta of deps.model.call({
      model: input.model,
      messages: transcript,
      tools: specs,
      temperature: input.temperature,
      maxTokens: input.maxTokens,
      responseFormat: input.responseFormat,
      stream: input.stream,
      signal: input.signal,
    })) {
      if (delta.type === 'content') yield { type: 'content', content: delta.text };
      else if (delta.type === 'reasoning') yield { type: 'reasoning', content: delta.text };
      else {
        answer = delta.message;
        finishReason = delta.finishReason;
        addUsage(usage, delta.usage);
      }
    }
    if (answer === undefined) throw new Error('model call ended without an answer');

    const calls = answer.tool_calls ?? [];
    if (calls.length === 0) {
      added.push(answer);
      yield { type: 'done', stopReason: stopReasonOf(finishReason), usage, messages: added };
      return;
    }
    const clientCalls = clientNames === null ? [] : calls.filter((call) => clientNames.has(call.function.name));
    if (clientCalls.length > 0) {
      // Only the client's calls leave: server calls of the same message are not run, so the
      // history the client sends back never holds a call without its result (the model can call
      // a server tool again on the next request).
      added.push({ role: 'assistant', content: answer.content, tool_calls: clientCalls });
      for (const call of clientCalls) yield { type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments };
      yield { type: 'done', stopReason: 'tool_calls', usage, messages: added };
      return;
    }
    if (step >= deps.maxSteps) {
      // Out of steps: keep what the model said, drop the calls we will not run, so the stored
      // history never holds a tool call without its result.
      if (answer.content) added.push({ role: 'assistant', content: answer.content });
      yield { type: 'done', stopReason: 'max_steps', usage, messages: added };
      return;
    }

    transcript.push(answer);
    added.push(answer);
    for (const call of calls) {
      yield { type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments };
    }
    const results = await runToolCalls(calls, deps.tools, input.tools.allowed, input.signal);
    input.signal.throwIfAborted();
    for (const result of results) {
      transcript.push(result);
      added.push(result);
      yield { type: 'tool_result', id: result.tool_call_id, name: result.name ?? '', result: result.content };
    }
  }
}

function stopReasonOf(finishReason: string): StopReason {
  if (finishReason === 'length') return 'length';
  if (finishReason === 'content_filter') return 'content_filter';
  return 'stop';
}
