import { ChassisError } from '../errors.js';
import type { AssistantMessage, ChatMessage, ModelClient, ToolCall, ToolMessage, ToolSpec, Usage } from '../model/types.js';
import type { ToolRegistry, ToolSelection } from '../tools/registry.js';
import { addUsage, emptyUsage, type RunEnding, type StepEvent, type StopReason } from './events.js';
import type { RunSignal } from '../run-signal.js';
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
  signal: RunSignal;
  /** Tool names whose calls wait for a human decision, or 'all' (an agent file's `approval`). Tools with `needsApproval` wait too. */
  approvalRequired?: readonly string[] | 'all';
  /**
   * Structured output: the final answer (one without tool calls) must pass this check. A failing
   * answer gets one repair attempt (the model is told what was wrong), then the run fails with
   * 502 RESPONSE_FORMAT_INVALID. While set, only the checked final answer is sent as content.
   */
  responseFormat?: ResponseFormatCheck;
  /**
   * Tools the caller runs itself (OpenAI `tools` of a request), offered beside the server's. When
   * the model calls one, the run stops with `tool_calls` and hands those calls back unrun.
   */
  clientTools?: readonly ToolSpec[];
  /** An OpenAI `response_format` from the request, sent to the provider as given (structured output). */
  providerResponseFormat?: Record<string, unknown>;
}

/** `text` is the answer as it should be returned (e.g. without a code fence around the JSON). */
export type ResponseFormatCheck = (answer: string) => { ok: true; text: string } | { ok: false; problem: string };

/**
 * Where a run stopped to wait for approvals: everything needed to go on later, in another
 * process if need be. `messages` ends with the assistant message whose calls wait; `ran` holds
 * the results of that step's calls that needed no approval (already run, never run again).
 */
export interface Checkpoint {
  step: number;
  messages: ChatMessage[];
  usage: Usage;
  ran: ToolMessage[];
  pending: ToolCall[];
}

/** A human's answer for one waiting call. */
export interface Decision {
  approved: boolean;
  reason: string | null;
}

/** Going on from a checkpoint: the decision for each of its pending calls, by tool call id. */
export interface Resume {
  checkpoint: Checkpoint;
  decisions: ReadonlyMap<string, Decision>;
}

const deniedResult = (reason: string | null) => `Denied by the user: ${reason === null || reason.trim() === '' ? 'no reason given' : reason}`;

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
 *
 * Each event is handed to `emit` as it happens (synchronously, in order) and the run's ending is
 * returned: a callback rather than a generator, because a generator costs a promise and a
 * microtask hop per yield, once per token on a stream (issue #13).
 */
export async function runAgent(
  input: AgentRunInput,
  deps: AgentDeps,
  emit: (event: StepEvent) => void,
  progress: RunProgress = newProgress(),
  resume?: Resume,
): Promise<RunEnding> {
  const added = progress.messages;
  const usage = progress.usage;
  let first = 1;
  if (resume !== undefined) {
    // Continue the recorded step: the decided calls get their results, then the loop goes on.
    const { checkpoint, decisions } = resume;
    added.push(...checkpoint.messages);
    addUsage(usage, checkpoint.usage);
    const results = await decidedResults(checkpoint, decisions, input, deps);
    input.signal.throwIfAborted();
    for (const result of results) {
      added.push(result);
      if (!checkpoint.ran.includes(result)) emit({ type: 'tool_result', id: result.tool_call_id, name: result.name ?? '', result: result.content });
    }
    first = checkpoint.step + 1;
  }
  const transcript: ChatMessage[] = [...input.context, ...added];
  const clientNames = input.clientTools?.length ? new Set(input.clientTools.map((tool) => tool.function.name)) : null;
  const specs = clientNames === null ? input.tools.specs : [...input.tools.specs, ...input.clientTools!];
  const format = input.responseFormat;
  let repairs = 1;

  for (let step = first; ; step++) {
    input.signal.throwIfAborted();
    let answer: AssistantMessage | undefined;
    let finishReason = 'stop';
    for await (const deltas of deps.model.call({
      model: input.model,
      messages: transcript,
      tools: specs,
      temperature: input.temperature,
      maxTokens: input.maxTokens,
      responseFormat: input.providerResponseFormat,
      stream: input.stream,
      signal: input.signal,
    })) {
      for (let index = 0; index < deltas.length; index++) {
        const delta = deltas[index]!;
        if (delta.type === 'content') {
          // With a response format the answer is sent only once it passed the check (below).
          if (format === undefined) emit({ type: 'content', content: delta.text });
        } else if (delta.type === 'reasoning') emit({ type: 'reasoning', content: delta.text });
        else {
          answer = delta.message;
          finishReason = delta.finishReason;
          addUsage(usage, delta.usage);
        }
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
      if (format !== undefined && answer.content) emit({ type: 'content', content: answer.content });
      added.push(answer);
      return { type: 'done', stopReason: stopReasonOf(finishReason), usage, messages: added };
    }
    const clientCalls = clientNames === null ? [] : calls.filter((call) => clientNames.has(call.function.name));
    if (clientCalls.length > 0) {
      // Only the client's calls leave: server calls of the same message are not run, so the
      // history the client sends back never holds a call without its result (the model can call
      // a server tool again on the next request).
      added.push({ role: 'assistant', content: answer.content, tool_calls: clientCalls });
      for (const call of clientCalls) emit({ type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments });
      return { type: 'done', stopReason: 'tool_calls', usage, messages: added };
    }
    if (step >= deps.maxSteps) {
      // Out of steps: keep what the model said, drop the calls we will not run, so the stored
      // history never holds a tool call without its result.
      if (answer.content) added.push({ role: 'assistant', content: answer.content });
      return { type: 'done', stopReason: 'max_steps', usage, messages: added };
    }

    transcript.push(answer);
    added.push(answer);
    for (const call of calls) emit({ type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments });
    const pending = calls.filter((call) => mustWait(call, input, deps));
    if (pending.length > 0) {
      // Run only what needs no decision; the rest waits as data (the checkpoint), not as a stack.
      const free = calls.filter((call) => !pending.includes(call));
      const ran = await runToolCalls(free, deps.tools, input.tools.allowed, input.signal);
      input.signal.throwIfAborted();
      for (const result of ran) emit({ type: 'tool_result', id: result.tool_call_id, name: result.name ?? '', result: result.content });
      return { type: 'paused', checkpoint: { step, messages: [...added], usage: { ...usage }, ran, pending } };
    }
    const results = await runToolCalls(calls, deps.tools, input.tools.allowed, input.signal);
    input.signal.throwIfAborted();
    for (const result of results) {
      transcript.push(result);
      added.push(result);
      emit({ type: 'tool_result', id: result.tool_call_id, name: result.name ?? '', result: result.content });
    }
  }
}

function mustWait(call: ToolCall, input: AgentRunInput, deps: AgentDeps): boolean {
  const own = deps.tools.resolve(call.function.name);
  // A call the run may not make only gets an error text: nothing runs, nobody needs to decide.
  if (own === undefined || !input.tools.allowed.has(own)) return false;
  return deps.tools.needsApproval(call.function.name, input.approvalRequired);
}

/** The step's results in call order: those already run, the approved ones run now, the denied ones' refusal. */
async function decidedResults(checkpoint: Checkpoint, decisions: ReadonlyMap<string, Decision>, input: AgentRunInput, deps: AgentDeps): Promise<ToolMessage[]> {
  const assistant = checkpoint.messages.at(-1);
  const calls = assistant?.role === 'assistant' ? (assistant.tool_calls ?? []) : [];
  const approved = checkpoint.pending.filter((call) => decisions.get(call.id)?.approved === true);
  const executed = await runToolCalls(approved, deps.tools, input.tools.allowed, input.signal);
  return calls.map((call): ToolMessage => {
    const done = checkpoint.ran.find((result) => result.tool_call_id === call.id) ?? executed.find((result) => result.tool_call_id === call.id);
    if (done !== undefined) return done;
    return { role: 'tool', tool_call_id: call.id, name: call.function.name, content: deniedResult(decisions.has(call.id) ? decisions.get(call.id)!.reason : 'timed out') };
  });
}

function repairRequest(problem: string): string {
  return `Your answer does not match the required JSON Schema: ${problem.slice(0, 2000)}. Reply again with only the corrected JSON value and no other text.`;
}

function stopReasonOf(finishReason: string): StopReason {
  if (finishReason === 'length') return 'length';
  if (finishReason === 'content_filter') return 'content_filter';
  return 'stop';
}
