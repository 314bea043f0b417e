import type { ChatMessage, ToolSpec } from '../../model/index.js';
import { invalidParam } from './errors.js';
import type { ChatCompletionRequest } from './schemas.js';

/** What a Chat Completions request asks of a run, in the loop's terms. */
export interface ChatPlan {
  /** The agent name (`model`). */
  agent: string;
  /** The conversation as the client sent it (stateless mode). */
  messages: ChatMessage[];
  clientTools: ToolSpec[];
  /** `tool_choice: "none"`: no tool at all, server or client. */
  noTools: boolean;
  stream: boolean;
  includeUsage: boolean;
  temperature?: number;
  maxTokens?: number;
  responseFormat?: Record<string, unknown>;
  /** From `X-Session-Id` or `metadata.session_id`: "new" starts a session, anything else continues one. */
  sessionId?: string;
}

type Message = ChatCompletionRequest['messages'][number];

const unsupported = (param: string, message: string) => invalidParam(param, message, 'UNSUPPORTED_PARAMETER');

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
  const noTools = body.tool_choice === 'none';
  if (body.tool_choice != null && body.tool_choice !== 'auto' && !noTools) {
    throw unsupported('tool_choice', 'tool_choice may be "auto" or "none": the agent decides which tools to call');
  }
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
  if (new Set(clientTools.map((tool) => tool.function.name)).size < clientTools.length) throw invalidParam('tools', 'Two tools have the same name');
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

function textOf(content: Message['content'], index: number, maxLength: number): string | null {
  if (content === undefined || content === null || typeof content === 'string') return content ?? null;
  let text = '';
  for (const part of content) {
    if (part.type !== 'text' || part.text === undefined) {
      throw unsupported('messages', `messages[${index}]: content parts of type "${part.type.slice(0, 64)}" are not supported (text only)`);
    }
    text += part.text;
  }
  // The schema bounds each part; the message as a whole has the same limit as a string content
  // (counted in code points, as the schema does; UTF-16 length is never below that count).
  if (text.length > maxLength && [...text].length > maxLength) {
    throw invalidParam('messages', `messages[${index}]: the text parts add up to more than ${maxLength} characters (MAX_MESSAGE_LENGTH)`);
  }
  return text;
}

function chatMessage(message: Message, index: number, maxLength: number): ChatMessage {
  const content = textOf(message.content, index, maxLength);
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
