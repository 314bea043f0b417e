import type { RunEvent } from '../../runs/index.js';
import type { ToolCall, Usage } from '../../model/index.js';
import { ChassisError } from '../../errors.js';
import { openAIError } from './errors.js';

/** What every chunk and the JSON answer of one run share. */
export interface ChatEncoding {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  /** Names of the request's own tools: only calls to these reach the client. */
  clientTools: ReadonlySet<string>;
  includeUsage: boolean;
}

/**
 * OpenAI has no finish reason for "the agent ran out of steps": `length` says the answer was cut
 * short, which is what a client should understand.
 */
export function finishReasonOf(stopReason: string | null): string {
  if (stopReason === 'max_steps') return 'length';
  return stopReason ?? 'stop';
}

/**
 * The JSON `chat.completion` of a completed run: a fold over its events, as the native answer is.
 * Text of every step is joined (server-side tool steps included), so the JSON and the stream of
 * the same run say the same; server-side tool calls and results are not shown (a strict client
 * would try to run them), only calls to the client's own tools.
 */
export function chatCompletionOf(events: readonly RunEvent[], encoding: ChatEncoding, usage: Usage, stopReason: string | null) {
  let content = '';
  let reasoning = '';
  const toolCalls: ToolCall[] = [];
  for (const event of events) {
    if (event.type === 'content') content += String(event.content);
    else if (event.type === 'reasoning') reasoning += String(event.content);
    else if (event.type === 'tool_call' && encoding.clientTools.has(String(event.name))) {
      toolCalls.push({ id: String(event.id), type: 'function', function: { name: String(event.name), arguments: String(event.arguments) } });
    }
  }
  return {
    id: encoding.id,
    object: 'chat.completion' as const,
    created: encoding.created,
    model: encoding.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant' as const,
          content: content === '' && toolCalls.length > 0 ? null : content,
          refusal: null,
          ...(reasoning === '' ? {} : { reasoning_content: reasoning }),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finishReasonOf(stopReason),
      },
    ],
    usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens },
  };
}

export const DONE = '[DONE]';

/**
 * Turns a run's events into `chat.completion.chunk` data frames as OpenAI sends them: the role
 * first, then content (and `reasoning_content`) deltas, client tool calls, one chunk with the
 * finish reason, the usage chunk when asked for, and `[DONE]`. A failure becomes one
 * `{"error": …}` frame (what OpenAI's SDKs throw from) and no `[DONE]`. Frames are built as text
 * around a fixed prefix: one per token, so no object per token.
 */
export class ChunkEncoder {
  private readonly head: string;
  private readonly tail: string;
  private toolIndex = 0;

  constructor(private readonly encoding: ChatEncoding) {
    this.head = `{"id":${JSON.stringify(encoding.id)},"object":"chat.completion.chunk","created":${encoding.created},"model":${JSON.stringify(encoding.model)},"system_fingerprint":null,"choices":[`;
    // OpenAI puts `usage: null` on every chunk but the last when usage was asked for.
    this.tail = encoding.includeUsage ? '],"usage":null}' : ']}';
  }

  private choice(delta: string, finishReason: string | null = null): string {
    return `${this.head}{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finishReason === null ? 'null' : JSON.stringify(finishReason)}}${this.tail}`;
  }

  /** The frames one event becomes (most events: one or none); `errorStatus` is the HTTP status an `error` event stands for. */
  frames(event: RunEvent, errorStatus = 500): string[] {
    switch (event.type) {
      case 'run_started':
        return [this.choice('{"role":"assistant","content":"","refusal":null}')];
      case 'content':
        return event.content === '' ? [] : [this.choice(`{"content":${JSON.stringify(event.content)}}`)];
      case 'reasoning':
        return event.content === '' ? [] : [this.choice(`{"reasoning_content":${JSON.stringify(event.content)}}`)];
      case 'tool_call': {
        if (!this.encoding.clientTools.has(String(event.name))) return [];
        const call = { index: this.toolIndex++, id: event.id, type: 'function', function: { name: event.name, arguments: event.arguments } };
        return [this.choice(`{"tool_calls":[${JSON.stringify(call)}]}`)];
      }
      case 'done': {
        const frames = [this.choice('{}', finishReasonOf(typeof event.stop_reason === 'string' ? event.stop_reason : null))];
        if (this.encoding.includeUsage) frames.push(`${this.head}],"usage":${JSON.stringify(event.usage)}}`);
        frames.push(DONE);
        return frames;
      }
      case 'error': {
        return [JSON.stringify(openAIError(new ChassisError(errorStatus, String(event.code), String(event.detail))))];
      }
      default:
        // Server-side tool results and anything newer are not part of OpenAI's stream.
        return [];
    }
  }
}
