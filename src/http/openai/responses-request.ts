import type { ChatMessage, ToolCall, ToolSpec } from '../../model/index.js';
import { invalidParam } from './errors.js';
import type { OpenAIRunPlan } from './openai-run.js';
import { checkToolNames, readToolChoice, textOf, unsupported } from './request.js';
import type { ResponseCreateRequest, ResponseInputItem } from './responses-schemas.js';

/** What a Responses request asks of a run, in the loop's terms, and what its answer echoes. */
export interface ResponsesPlan extends OpenAIRunPlan {
  /** The new messages, in chat form (developer → system, function items → tool calls and results). */
  input: ChatMessage[];
  instructions: string | null;
  previousResponseId: string | null;
  /** The client asked for the response to be kept (default true). */
  store: boolean;
  metadata: Record<string, string>;
  maxOutputTokens: number | null;
  /** The request's function tools in the Responses shape, as the answer echoes them. */
  tools: Array<Record<string, unknown>>;
  textFormat: Record<string, unknown>;
}

const MESSAGE_PARTS: ReadonlySet<string> = new Set(['input_text', 'output_text']);

/**
 * Reads a Responses request into a plan, refusing what we cannot honour (built-in tools, forced
 * tool choices, background runs, conversations objects, prompt templates, non-text input) with a
 * 400 naming the field. Reasoning items in the input are dropped: they are the model's own notes,
 * which providers behind us do not take back.
 */
export function readResponsesRequest(body: ResponseCreateRequest, maxMessageLength: number): ResponsesPlan {
  const loose = body as ResponseCreateRequest & Record<string, unknown>;
  if (loose.background === true) throw unsupported('background', 'Background responses are not supported: use stream, or the native API\'s runs');
  if (loose.conversation != null) throw unsupported('conversation', 'Conversation objects are not supported: continue with previous_response_id');
  if (loose.prompt != null) throw unsupported('prompt', 'Prompt templates are not supported: the agent (model) brings its instructions');
  const noTools = readToolChoice(body.tool_choice);
  const requested = body.tools ?? [];
  const builtIn = requested.find((tool) => tool.type !== 'function');
  if (builtIn !== undefined) {
    throw unsupported('tools', `Tools of type "${builtIn.type.slice(0, 64)}" are not supported: send function tools (the agent brings its own server-side tools)`);
  }
  const clientTools = requested.map((tool, index): ToolSpec => {
    if (tool.name === undefined) throw invalidParam('tools', `tools[${index}]: a function tool needs "name"`);
    return { type: 'function', function: { name: tool.name, description: tool.description ?? '', parameters: tool.parameters ?? { type: 'object', properties: {} } } };
  });
  checkToolNames(clientTools);
  const previousResponseId = body.previous_response_id ?? null;
  const input = typeof body.input === 'string' ? [{ role: 'user' as const, content: body.input }] : inputMessages(body.input, maxMessageLength, previousResponseId !== null);
  if (input.length === 0) throw invalidParam('input', 'The input has no message or function result (reasoning items alone are not an input)');
  const format = body.text?.format;
  return {
    agent: body.model,
    clientTools: noTools ? [] : clientTools,
    noTools,
    stream: body.stream === true,
    temperature: body.temperature ?? undefined,
    maxTokens: body.max_output_tokens ?? undefined,
    responseFormat: providerFormat(format),
    input,
    instructions: body.instructions ?? null,
    previousResponseId,
    store: body.store !== false,
    metadata: body.metadata ?? {},
    maxOutputTokens: body.max_output_tokens ?? null,
    tools: requested.map((tool) => ({ type: 'function', name: tool.name, description: tool.description ?? null, parameters: tool.parameters ?? null, strict: tool.strict ?? null })),
    textFormat: format ?? { type: 'text' },
  };
}

/** Responses' `text.format` as Chat Completions' `response_format` (what providers behind us take). */
function providerFormat(format: NonNullable<ResponseCreateRequest['text']>['format']): Record<string, unknown> | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.schema === undefined || format.name === undefined) throw invalidParam('text', 'text.format of type "json_schema" needs "name" and "schema"');
  const { type: _type, ...schema } = format;
  return { type: 'json_schema', json_schema: schema };
}

/**
 * Input items as chat messages. Function calls join the assistant message before them (or make one),
 * as a chat history holds them; function outputs become tool messages. With previous_response_id the
 * calls are already in the conversation, so only their outputs may be sent.
 */
function inputMessages(items: readonly ResponseInputItem[], maxLength: number, continuing: boolean): ChatMessage[] {
  const messages: ChatMessage[] = [];
  items.forEach((item, index) => {
    const at = `input[${index}]`;
    const type = item.type ?? (item.role === undefined ? undefined : 'message');
    if (type === 'message') {
      messages.push(message(item, at, maxLength));
    } else if (type === 'function_call') {
      if (continuing) throw invalidParam('input', `${at}: with previous_response_id the function calls are already part of the conversation: send only their function_call_output items`);
      if (item.call_id === undefined || item.name === undefined || item.arguments === undefined) throw invalidParam('input', `${at}: a function_call needs call_id, name and arguments`);
      const call: ToolCall = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
      const last = messages.at(-1);
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      if (item.call_id === undefined || item.output === undefined) throw invalidParam('input', `${at}: a function_call_output needs call_id and output`);
      const output = textOf(item.output, { param: 'input', at }, maxLength, MESSAGE_PARTS) ?? '';
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: output });
    } else if (type !== 'reasoning') {
      throw unsupported('input', `${at}: input items of type "${String(type).slice(0, 64)}" are not supported (message, function_call, function_call_output)`);
    }
  });
  return messages;
}

function message(item: ResponseInputItem, at: string, maxLength: number): ChatMessage {
  if (item.role === undefined) throw invalidParam('input', `${at}: a message needs "role"`);
  const content = textOf(item.content, { param: 'input', at }, maxLength, MESSAGE_PARTS);
  if (content === null) throw invalidParam('input', `${at}: a message needs "content"`);
  if (item.role === 'assistant') return { role: 'assistant', content };
  // OpenAI's newer name for system instructions; providers behind us may not know it.
  return { role: item.role === 'developer' ? 'system' : item.role, content };
}
