import type { ChatMessage, ToolSpec } from '../../model/index.js';
import { invalidParam } from './errors.js';
import type { OpenAIRunPlan } from './openai-run.js';
import type { ChatCompletionRequest } from './schemas.js';

/** What a Chat Completions request asks of a run, in the loop's terms. */
export interface ChatPlan extends OpenAIRunPlan {
  /** The conversation as the client sent it (stateless mode). */
  messages: ChatMessage[];
  includeUsage: boolean;
  /** From `X-Session-Id` or `metadata.session_id`: "new" starts a session, anything else continues one. */
  sessionId?: string;
}

type Message = ChatCompletionRequest['messages'][number];

export const unsupported = (param: string, message: string) => invalidParam(param, message, 'UNSUPPORTED_PARAMETER');

/** `tool_choice`: true for "none" (no tools at all); "auto" or absent is false; anything else is refused. */
export function readToolChoice(choice: unknown): boolean {
  if (choice === 'none') return true;
  if (choice != null && choice !== 'auto') throw unsupported('tool_choice', 'tool_choice may be "auto" or "none": the agent decides which tools to call');
  return false;
}

export function checkToolNames(tools: readonly ToolSpec[]): void {
  if (new Set(tools.map((tool) => tool.function.name)).size < tools.length) throw invalidParam('tools', 'Two tools have the same name');
}

/**
 * Reads an OpenAI request into a plan, refusing what we cannot honour (several choices, log
 * probabilities, audio, forced tool choices, non-text content) with a 400 naming the field, so a
 * client never gets an answer that silently means something else. Sampling and bookkeeping fields
 * (top_p, seed, stop, user, store, …) are ignored.
 */
export function readChatRequest(body: ChatCompletionRequest, sessionHeader: string | undefined, maxMessageLength: number): ChatPlan {
  const loose = body as ChatCompletionRequest & Record<string, unknown>;
  if (body.n != null && body.n > 1) throw unsupported('n', 'n > 1 is not supported: an agent run gives one answer');
  if (body.logprobs === true || (body.top_logprobs != null && body.top_logprobs > 0)) throw unsupported('logprobs', 'logprobs are not supported');
  if (loose.audio != null || (Array.isArray(loose.modalities) && loose.modalities.some((modality) => modality !== 'text'))) {
    throw unsupported('modalities', 'Only text output is supported');
  }
  if (loose.functions != null || loose.function_call != null) throw unsupported('functions', 'The legacy "functions" field is not supported: send "tools"');
  const noTools = readToolChoice(body.tool_choice);
  const format = body.response_format;
  if (format?.type === 'json_schema' && format.json_schema === undefined) throw invalidParam('response_format', 'response_format.json_schema is required with type "json_schema"');

  const sessionId = sessionHeader ?? body.metadata?.session_id;
  if (sessionId !== undefined && (sessionId.length === 0 || sessionId.length > 128)) throw invalidParam('metadata', 'A session id is 1-128 characters');
  const clientTools = noTools
    ? []
    : (body.tools ?? []).map((tool): ToolSpec => ({
        type: 'function',
        function: { name: tool.function.name, description: tool.function.description ?? '', parameters: tool.function.parameters ?? { type: 'object', properties: {} } },
      }));
  checkToolNames(clientTools);
  if (sessionId !== undefined && clientTools.length > 0) {
    throw unsupported('tools', 'Client-side tools work in stateless mode only: drop the session id, or the tools');
  }
  return {
    agent: body.model,
    messages: body.messages.map((message, index) => chatMessage(message, index, maxMessageLength)),
    clientTools,
    noTools,
    stream: body.stream === true,
    includeUsage: body.stream === true && body.stream_options?.include_usage === true,
    temperature: body.temperature ?? undefined,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    responseFormat: format === undefined || format.type === 'text' ? undefined : format,
    sessionId,
  };
}

/** A message's text from a string or text parts of the given types; anything else is refused (text only). */
export function textOf(
  content: string | null | undefined | ReadonlyArray<{ type: string; text?: string }>,
  where: { param: string; at: string },
  maxLength: number,
  partTypes: ReadonlySet<string>,
): string | null {
  if (content === undefined || content === null || typeof content === 'string') return content ?? null;
  let text = '';
  for (const part of content) {
    if (!partTypes.has(part.type) || part.text === undefined) {
      throw unsupported(where.param, `${where.at}: content parts of type "${part.type.slice(0, 64)}" are not supported (text only)`);
    }
    text += part.text;
  }
  // The schema bounds each part; the message as a whole has the same limit as a string content
  // (counted in code points, as the schema does; UTF-16 length is never below that count).
  if (text.length > maxLength && [...text].length > maxLength) {
    throw invalidParam(where.param, `${where.at}: the text parts add up to more than ${maxLength} characters (MAX_MESSAGE_LENGTH)`);
  }
  return text;
}

const CHAT_TEXT_PARTS: ReadonlySet<string> = new Set(['text']);

function chatMessage(message: Message, index: number, maxLength: number): ChatMessage {
  const content = textOf(message.content, { param: 'messages', at: `messages[${index}]` }, maxLength, CHAT_TEXT_PARTS);
  const name = message.name === undefined ? {} : { name: message.name };
  if (message.role === 'assistant') {
    return { role: 'assistant', content, ...name, ...(message.tool_calls?.length ? { tool_calls: message.tool_calls } : {}) };
  }
  if (message.tool_calls !== undefined) throw invalidParam('messages', `messages[${index}]: only assistant messages carry tool_calls`);
  if (content === null) throw invalidParam('messages', `messages[${index}]: content is required for ${message.role} messages`);
  if (message.role === 'tool') {
    if (!message.tool_call_id) throw invalidParam('messages', `messages[${index}]: a tool message needs "tool_call_id"`);
    return { role: 'tool', content, tool_call_id: message.tool_call_id };
  }
  // OpenAI's newer name for system instructions; providers behind us may not know it.
  return { role: message.role === 'developer' ? 'system' : message.role, content, ...name };
}
