import type { Usage } from '../../model/index.js';
import type { RunEvent } from '../../runs/index.js';
import type { Frame } from './openai-run.js';

/** What every event and the response object of one run share: the request's echo and the ids. */
export interface ResponseEncoding {
  /** `resp_…`, from the run id. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  model: string;
  /** Names of the request's own tools: only calls to these reach the client, as function_call items. */
  clientTools: ReadonlySet<string>;
  instructions: string | null;
  previousResponseId: string | null;
  /** Whether the response is kept (and can be read and continued). */
  store: boolean;
  metadata: Record<string, string>;
  maxOutputTokens: number | null;
  temperature: number | null;
  toolChoice: string;
  tools: Array<Record<string, unknown>>;
  textFormat: Record<string, unknown>;
}

type OutputText = { type: 'output_text'; text: string; annotations: never[]; logprobs: never[] };
type ReasoningText = { type: 'reasoning_text'; text: string };
type ItemStatus = 'in_progress' | 'completed' | 'incomplete';
type MessageItem = { id: string; type: 'message'; status: ItemStatus; role: 'assistant'; content: OutputText[] };
type ReasoningItem = { id: string; type: 'reasoning'; status: ItemStatus; summary: never[]; content: ReasoningText[] };
type FunctionCallItem = { id: string; type: 'function_call'; status: ItemStatus; call_id: string; name: string; arguments: string };
type OutputItem = MessageItem | ReasoningItem | FunctionCallItem;

/** OpenAI's `incomplete_details.reason` for a run that stopped short; null when it did not. */
function incompleteReason(stopReason: string | null): string | null {
  // The agent running out of steps is, to a client, an answer cut short.
  if (stopReason === 'length' || stopReason === 'max_steps') return 'max_output_tokens';
  if (stopReason === 'content_filter') return 'content_filter';
  return null;
}

function usageOf(usage: Usage) {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.total_tokens,
  };
}

/**
 * Turns a run's events into the Responses API's event stream and, from the same state, the
 * `response` object: the text of every step is one output_text part of a message item (server-side
 * tool steps included, as in Chat Completions), reasoning deltas a reasoning item, each call to a
 * client tool a function_call item. Server-side tool calls and results are not shown (a strict
 * client would try to run them). The JSON answer and the stored response are this encoder's fold
 * over the same events (`responseOf`), so the stream and the JSON cannot disagree.
 */
export class ResponseEncoder {
  private readonly output: OutputItem[] = [];
  private open: MessageItem | ReasoningItem | null = null;
  private sequence = 0;

  /** `emit: false` folds without building frames (the JSON answer). */
  constructor(
    private readonly encoding: ResponseEncoding,
    private readonly emit = true,
  ) {}

  /** The frames one event becomes (most events: one, or none). */
  frames(event: RunEvent): Frame[] {
    const frames: Frame[] = [];
    switch (event.type) {
      case 'run_started': {
        const response = this.response('in_progress', null, null);
        this.push(frames, 'response.created', { response });
        this.push(frames, 'response.in_progress', { response });
        break;
      }
      case 'content':
        if (event.content !== '') this.text(frames, 'message', String(event.content));
        break;
      case 'reasoning':
        if (event.content !== '') this.text(frames, 'reasoning', String(event.content));
        break;
      case 'tool_call':
        if (this.encoding.clientTools.has(String(event.name))) this.functionCall(frames, String(event.id), String(event.name), String(event.arguments));
        break;
      case 'done':
        this.finish(frames, typeof event.stop_reason === 'string' ? event.stop_reason : null, event.usage as Usage);
        break;
      case 'error':
        this.close(frames, 'incomplete');
        this.push(frames, 'response.failed', {
          response: this.response('failed', null, { code: String(event.code).toLowerCase(), message: String(event.detail) }),
        });
        break;
      default:
        // Server-side tool results and anything newer are not part of OpenAI's stream.
        break;
    }
    return frames;
  }

  /** Ends the response: closes the open item and sends `response.completed` (or `.incomplete`); returns the final object. */
  finish(frames: Frame[], stopReason: string | null, usage: Usage): Record<string, unknown> {
    this.close(frames, 'completed');
    // An answer with no text and no calls is still a message, as OpenAI sends it.
    if (this.output.length === 0) {
      this.openItem(frames, 'message');
      this.close(frames, 'completed');
    }
    const reason = incompleteReason(stopReason);
    const status = stopReason === 'cancelled' ? 'cancelled' : reason === null ? 'completed' : 'incomplete';
    const response = this.response(status, usage, null, reason);
    this.push(frames, status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response });
    return response;
  }

  private push(frames: Frame[], type: string, fields: Record<string, unknown>): void {
    const sequence = this.sequence++;
    if (this.emit) frames.push({ event: type, data: JSON.stringify({ type, ...fields, sequence_number: sequence }) });
  }

  private itemId(prefix: string): string {
    return `${prefix}_${this.encoding.id.slice(5)}_${this.output.length}`;
  }

  private openItem(frames: Frame[], type: 'message' | 'reasoning'): MessageItem | ReasoningItem {
    const outputIndex = this.output.length;
    const item: MessageItem | ReasoningItem =
      type === 'message'
        ? { id: this.itemId('msg'), type, status: 'in_progress', role: 'assistant', content: [] }
        : { id: this.itemId('rs'), type, status: 'in_progress', summary: [], content: [] };
    this.output.push(item);
    this.open = item;
    this.push(frames, 'response.output_item.added', { output_index: outputIndex, item });
    const part: OutputText | ReasoningText = type === 'message' ? { type: 'output_text', text: '', annotations: [], logprobs: [] } : { type: 'reasoning_text', text: '' };
    this.push(frames, 'response.content_part.added', { item_id: item.id, output_index: outputIndex, content_index: 0, part });
    (item.content as Array<OutputText | ReasoningText>).push({ ...part });
    return item;
  }

  private text(frames: Frame[], type: 'message' | 'reasoning', delta: string): void {
    if (this.open?.type !== type) {
      this.close(frames, 'completed');
      this.openItem(frames, type);
    }
    const item = this.open!;
    item.content[0]!.text += delta;
    const where = { item_id: item.id, output_index: this.output.length - 1, content_index: 0 };
    if (type === 'message') this.push(frames, 'response.output_text.delta', { ...where, delta, logprobs: [] });
    else this.push(frames, 'response.reasoning_text.delta', { ...where, delta });
  }

  /** Ends the open message or reasoning item with its `.done` events. */
  private close(frames: Frame[], status: ItemStatus): void {
    const item = this.open;
    if (item === null) return;
    this.open = null;
    item.status = status;
    const part = item.content[0]!;
    const where = { item_id: item.id, output_index: this.output.indexOf(item), content_index: 0 };
    if (item.type === 'message') this.push(frames, 'response.output_text.done', { ...where, text: part.text, logprobs: [] });
    else this.push(frames, 'response.reasoning_text.done', { ...where, text: part.text });
    this.push(frames, 'response.content_part.done', { ...where, part });
    this.push(frames, 'response.output_item.done', { output_index: where.output_index, item });
  }

  private functionCall(frames: Frame[], callId: string, name: string, args: string): void {
    this.close(frames, 'completed');
    const outputIndex = this.output.length;
    const item: FunctionCallItem = { id: this.itemId('fc'), type: 'function_call', status: 'in_progress', call_id: callId, name, arguments: '' };
    this.output.push(item);
    this.push(frames, 'response.output_item.added', { output_index: outputIndex, item });
    this.push(frames, 'response.function_call_arguments.delta', { item_id: item.id, output_index: outputIndex, delta: args });
    item.arguments = args;
    item.status = 'completed';
    this.push(frames, 'response.function_call_arguments.done', { item_id: item.id, output_index: outputIndex, name, arguments: args });
    this.push(frames, 'response.output_item.done', { output_index: outputIndex, item });
  }

  /** The `response` object as it stands. */
  private response(status: string, usage: Usage | null, error: { code: string; message: string } | null, incomplete: string | null = null): Record<string, unknown> {
    const { encoding } = this;
    return {
      id: encoding.id,
      object: 'response',
      created_at: encoding.createdAt,
      status,
      background: false,
      error,
      incomplete_details: incomplete === null ? null : { reason: incomplete },
      instructions: encoding.instructions,
      max_output_tokens: encoding.maxOutputTokens,
      model: encoding.model,
      // Frames are serialised as they are pushed, so later events cannot change one already built.
      output: this.output,
      parallel_tool_calls: true,
      previous_response_id: encoding.previousResponseId,
      store: encoding.store,
      temperature: encoding.temperature,
      text: { format: encoding.textFormat },
      tool_choice: encoding.toolChoice,
      tools: encoding.tools,
      top_p: null,
      truncation: 'disabled',
      usage: usage === null ? null : usageOf(usage),
      metadata: encoding.metadata,
    };
  }
}

/**
 * The `response` object of a run: the encoder's fold over its events so far, ended with the run's
 * stop reason and usage. What the JSON answer returns, and what is stored for GET and for
 * previous_response_id (at commit time, before `done` is logged).
 */
export function responseOf(events: readonly RunEvent[], encoding: ResponseEncoding, stopReason: string | null, usage: Usage): Record<string, unknown> {
  const encoder = new ResponseEncoder(encoding, false);
  for (const event of events) {
    if (event.type !== 'done' && event.type !== 'error') encoder.frames(event);
  }
  return encoder.finish([], stopReason, usage);
}
