import { ChassisError } from '../errors.js';
import type { AssistantMessage, ChatMessage, ModelClient, Usage } from '../model/types.js';
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
  /** Ask the provider for token deltas (SSE clients) or for whole answers (JSON clients). */
  stream: boolean;
  signal: AbortSignal;
  /**
   * Structured output: the final answer (one without tool calls) must pass this check. A failing
   * answer gets one repair attempt (the model is told what was wrong), then the run fails with
   * 502 RESPONSE_FORMAT_INVALID. While set, only the checked final answer is sent as content.
   */
  responseFormat?: ResponseFormatCheck;
  /** Tool names whose calls wait for a human decision, or every tool (filled from an agent's `approval`). */
  approvalRequired?: readonly string[] | 'all';
}

/** `text` is the answer as it should be returned (e.g. without a code fence around the JSON). */
export type ResponseFormatCheck = (answer: string) => { ok: true; text: string } | { ok: false; problem: string };

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
  const format = input.responseFormat;
  let repairs = 1;

  for (let step = 1; ; step++) {
    input.signal.throwIfAborted();
    let answer: AssistantMessage | undefined;
    let finishReason = 'stop';
    for await (const delta of deps.model.call({
      model: input.model,
      messages: transcript,
      tools: input.tools.specs,
      temperature: input.temperature,
      maxTokens: input.maxTokens,
      stream: input.stream,
      signal: input.signal,
    })) {
      if (delta.type === 'content') {
        // With a response format the answer is sent only once it passed the check (below).
        if (format === undefined) yield { type: 'content', content: delta.text };
      } else if (delta.type === 'reasoning') yield { type: 'reasoning', content: delta.text };
      else {
        answer = delta.message;
        finishReason = delta.finishReason;
        addUsage(usage, delta.usage);
      }
    }
    if (answer === undefined) throw new Error('model call ended without an answer');

    const calls = answer.tool_calls ?? [];
    if (calls.length === 0) {
      // A filtered answer is reported as such (stop_reason content_filter), not repaired.
      if (format !== undefined && finishReason !== 'content_filter') {
        const checked = format(answer.content ?? '');
        if (!checked.ok) {
          if (repairs === 0) {
            throw new ChassisError(502, 'RESPONSE_FORMAT_INVALID', `The model's answer did not match the agent's response_format after one repair attempt: ${checked.problem}`.slice(0, 2000));
          }
          repairs--;
          // Only the model sees the failed attempt and the correction; the stored history keeps
          // the valid answer alone.
          transcript.push(answer, { role: 'user', content: repairRequest(checked.problem) });
          continue;
        }
        answer = { ...answer, content: checked.text };
      }
      if (format !== undefined && answer.content) yield { type: 'content', content: answer.content };
      added.push(answer);
      yield { type: 'done', stopReason: stopReasonOf(finishReason), usage, messages: added };
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

function repairRequest(problem: string): string {
  return `Your answer does not match the required JSON Schema: ${problem.slice(0, 2000)}. Reply again with only the corrected JSON value and no other text.`;
}

function stopReasonOf(finishReason: string): StopReason {
  if (finishReason === 'length') return 'length';
  if (finishReason === 'content_filter') return 'content_filter';
  return 'stop';
}
