import { StringDecoder } from 'node:string_decoder';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../json-depth.js';
import { Pool, type Dispatcher } from 'undici';
import { ChassisError } from '../errors.js';
import type { Config } from '../config.js';
import { messagesBody } from './body-bytes.js';
import { isAscii, jsonArrayText } from './json-text.js';
import { SseDataSplitter } from './sse-data.js';
import type { AssistantMessage, FinishReason, ModelClient, ModelDelta, ModelRequest, ToolCall, Usage } from './types.js';
import { mapUpstreamError, retryDelayMs, sleep, UpstreamHttpError, type UpstreamHeaders } from './upstream-errors.js';
import { UpstreamExchange, type AnswerReader } from './upstream-exchange.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';
/** Enough of an error answer for its message; the rest of a (say) HTML error page is dropped unread. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Why an answer is dropped when the run stops reading it early. */
const CONSUMER_LEFT = new Error('the model call was left before its answer ended');

type ChunkToolCall = { index: number; id?: string; function?: { name?: string; arguments?: string } };

/**
 * A client for the one endpoint we call, POST {base}/chat/completions, on undici's dispatch over a
 * keep-alive agent (upstream-exchange.ts). We left the `openai` SDK because its transport (fetch,
 * web streams, byte-level SSE parsing, several AbortControllers per call) cost 1.3 ms of CPU per
 * JSON call and 2.3 ms per 50-chunk stream, more than the whole budget of a request (bench/README.md).
 *
 * What an agent server needs is here: a connect timeout; an idle timeout that covers the wait for
 * the headers and every gap in the body (undici's headers/body timeouts, so no timer of our own per
 * call); retries of the opening request only, so a delta that reached the client is never sent
 * twice; and aborts with the run's reason.
 */
export function createOpenAIModelClient(config: Config, version: string): ModelClient {
  const configured = config.openaiApiKey !== undefined || config.openaiBaseUrl !== undefined;
  const secrets = config.openaiApiKey === undefined ? [] : [config.openaiApiKey];
  const endpoint = chatCompletionsEndpoint(config.openaiBaseUrl ?? OPENAI_BASE_URL);
  // One origin only: its pool, without an Agent's lookup of the pool by origin on every call.
  const dispatcher = new Pool(endpoint.origin, {
    connect: { timeout: config.upstreamConnectTimeoutSeconds * 1000 },
    keepAliveTimeout: 30_000,
  });
  const idleMs = config.upstreamIdleTimeoutSeconds * 1000;
  const common: Record<string, string> = { 'content-type': 'application/json', 'user-agent': `agent-chassis/${version}` };
  if (config.openaiApiKey !== undefined) common.authorization = `Bearer ${config.openaiApiKey}`;
  const jsonHeaders = { ...common, accept: 'application/json' };
  const streamHeaders = { ...common, accept: 'text/event-stream' };

  async function* call(request: ModelRequest): AsyncGenerator<readonly ModelDelta[]> {
    if (!configured) {
      throw new ChassisError(
        503,
        'MODEL_NOT_CONFIGURED',
        'No model provider is configured: set OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for any OpenAI-compatible server)',
      );
    }
    const options: Dispatcher.DispatchOptions = {
      origin: endpoint.origin,
      path: endpoint.path,
      method: 'POST',
      headers: request.stream ? streamHeaders : jsonHeaders,
      body: requestBody(request),
      headersTimeout: idleMs,
      bodyTimeout: idleMs,
    };
    const readerFor = (status: number, headers: UpstreamHeaders): AnswerReader => {
      if (status > 299) return new ErrorAnswer(status, headers);
      // A provider that ignores `stream: true` answers one JSON completion: take it as such.
      if (!request.stream || (firstValue(headers['content-type']) ?? '').startsWith('application/json')) return new JsonAnswer(headers);
      return new StreamReader(headers);
    };
    const { signal } = request;
    // Aborted from our side (client gone, cancel, deadline, shutdown): the run's reason is the error.
    const abortReason = () => mapUpstreamError(signal.reason, { aborted: true, timedOut: false, secrets });

    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw abortReason();
      const exchange = new UpstreamExchange(readerFor);
      const onAbort = () => exchange.abort(abortReason());
      signal.addEventListener('abort', onAbort);
      try {
        dispatcher.dispatch(options, exchange);
        for (let batch = await exchange.next(); batch !== null; batch = await exchange.next()) yield batch;
        return;
      } catch (error) {
        if (signal.aborted) throw abortReason();
        const mapped = mapUpstreamError(error, { timedOut: isIdleTimeout(error), aborted: false, secrets });
        // Once a chunk was read the call is never retried: a delta that reached the client is never sent twice.
        const delay = attempt < config.upstreamMaxRetries && !exchange.started ? retryDelayMs(mapped, attempt, config) : null;
        if (delay === null) throw mapped;
        await sleep(delay, signal);
      } finally {
        signal.removeEventListener('abort', onAbort);
        // The consumer left before the answer ended: stop reading it.
        exchange.abort(CONSUMER_LEFT);
      }
    }
  }

  return {
    call,
    async close() {
      await dispatcher.close();
    },
  };
}

/** `{base}/chat/completions`; a trailing slash on the base and a query (e.g. an API version) are kept apart. */
export function chatCompletionsEndpoint(baseUrl: string): { origin: string; path: string } {
  const url = new URL(baseUrl);
  return { origin: url.origin, path: `${url.pathname.replace(/\/+$/, '')}/chat/completions${url.search}` };
}

function requestBody(request: ModelRequest): Buffer {
  const body: Record<string, unknown> = { model: request.model, stream: request.stream };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.responseFormat !== undefined) body.response_format = request.responseFormat;
  if (request.stream) body.stream_options = { include_usage: true };
  // Messages and tool specs are serialised once each (json-text.ts), and a body reuses the bytes of
  // the messages it shares with the one sent before it (body-bytes.ts). `stream` is always in
  // `body`, so it is never empty: `{"messages":[…],"tools":[…],` + the rest.
  const tools = request.tools.length > 0 ? jsonArrayText(request.tools) : null;
  const rest = JSON.stringify(body).slice(1);
  return messagesBody(request.messages, tools === null ? rest : `"tools":${tools.text},${rest}`, (tools?.ascii ?? true) && isAscii(rest));
}

function isIdleTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

const firstValue = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

const malformed = (cause: unknown) =>
  new ChassisError(502, 'UPSTREAM_ERROR', 'The model provider sent an answer that is not valid JSON', { cause, retryable: true });

function parseJson(text: string): any {
  // A provider's answer is input like any other: nesting past the bound would overflow the stack later (stringify, history).
  if (jsonTooDeep(text)) throw malformed(new Error(`answer nests more than ${MAX_JSON_DEPTH} levels deep`));
  try {
    return JSON.parse(text);
  } catch (error) {
    throw malformed(error);
  }
}

/** A non-2xx answer: enough of its body for the provider's message; the rest (say, an HTML page) is dropped unread. */
class ErrorAnswer implements AnswerReader {
  readonly started = false;
  private text = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly status: number,
    private readonly headers: UpstreamHeaders,
  ) {}

  data(bytes: Buffer): Error | null {
    this.text += this.decoder.write(bytes);
    return this.text.length >= ERROR_BODY_LIMIT ? this.error() : null;
  }

  end(): Error | null {
    return this.error();
  }

  /** The status says what happened; a body cut short only loses the provider's wording. */
  lost(): Error | null {
    return this.error();
  }

  private error(): UpstreamHttpError {
    let body: unknown = this.text;
    try {
      body = JSON.parse(this.text);
    } catch {
      // Not JSON (a proxy's HTML page): no provider message to pass on.
    }
    return new UpstreamHttpError(this.status, this.headers, body);
  }
}

/** A whole completion in one JSON answer: parsed once, at its end. Nothing reached the client before, so it may be retried. */
class JsonAnswer implements AnswerReader {
  readonly started = false;
  private readonly parts: Buffer[] = [];

  constructor(private readonly headers: UpstreamHeaders) {}

  data(bytes: Buffer): Error | null {
    this.parts.push(bytes);
    return null;
  }

  end(out: ModelDelta[]): Error | null {
    const parts = this.parts;
    const text = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
    try {
      out.push(...completionDeltas(parseJson(text), this.headers));
      return null;
    } catch (error) {
      return error as Error;
    }
  }
}

function completionDeltas(completion: any, headers: UpstreamHeaders): ModelDelta[] {
  if (completion?.error && !completion.choices) throw new UpstreamHttpError(null, headers, completion);
  const choice = completion?.choices?.[0];
  const message = choice?.message ?? {};
  const deltas: ModelDelta[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') deltas.push({ type: 'reasoning', text: reasoning });
  const content: string | null = typeof message.content === 'string' ? message.content : null;
  if (content) deltas.push({ type: 'content', text: content });
  const toolCalls: ToolCall[] = Array.isArray(message.tool_calls)
    ? message.tool_calls.map((call: any) => ({
        id: String(call.id ?? ''),
        type: 'function' as const,
        function: { name: String(call.function?.name ?? ''), arguments: String(call.function?.arguments ?? '') },
      }))
    : [];
  deltas.push(endDelta(content, toolCalls, choice?.finish_reason ?? 'stop', normaliseUsage(completion?.usage)));
  return deltas;
}

/** Folds the chunks of a streamed answer into deltas as they come, and the whole message at the end. */
export class StreamReader implements AnswerReader {
  /** True once a chunk was read. */
  started = false;
  private readonly lines = new SseDataSplitter();
  // Decodes UTF-8 across chunk boundaries (a character may be split between two reads).
  private readonly decoder = new StringDecoder('utf8');
  private content = '';
  private readonly calls: ToolCall[] = [];
  private finishReason: FinishReason = 'stop';
  private usage: Usage | null = null;
  private done = false;

  constructor(private readonly headers: UpstreamHeaders) {}

  /**
   * Adds the deltas of these bytes to `out`. A provider error (or a chunk that is not JSON) is
   * returned, not thrown, so the deltas read before it in the same bytes still reach the client.
   */
  data(bytes: Buffer, out: ModelDelta[]): Error | null {
    return this.take(this.lines.push(this.decoder.write(bytes)), out);
  }

  /** The body ended: the last deltas, then the `end` delta (or the error that ended the answer). */
  end(out: ModelDelta[]): Error | null {
    const rest = this.decoder.end();
    const failure = this.take(rest === '' ? [] : this.lines.push(rest), out) ?? this.take(this.lines.end(), out);
    if (failure === null) out.push(endDelta(this.content === '' ? null : this.content, this.calls.filter(Boolean), this.finishReason, this.usage));
    return failure;
  }

  private take(events: string[], out: ModelDelta[]): Error | null {
    try {
      for (const data of events) this.chunk(data, out);
      return null;
    } catch (error) {
      return error as Error;
    }
  }

  private chunk(data: string, out: ModelDelta[]): void {
    if (this.done) return;
    if (data.startsWith('[DONE]')) {
      this.done = true;
      return;
    }
    const chunk = parseJson(data);
    if (chunk?.error) throw new UpstreamHttpError(null, this.headers, chunk);
    this.started = true;
    if (chunk?.usage) this.usage = normaliseUsage(chunk.usage);
    const choice = chunk?.choices?.[0];
    if (choice === undefined || choice === null) return;
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (delta === undefined || delta === null) return;
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === 'string' && reasoning !== '') out.push({ type: 'reasoning', text: reasoning });
    if (typeof delta.content === 'string' && delta.content !== '') {
      this.content += delta.content;
      out.push({ type: 'content', text: delta.content });
    }
    if (Array.isArray(delta.tool_calls)) for (const part of delta.tool_calls as ChunkToolCall[]) mergeToolCall(this.calls, part);
  }
}

function mergeToolCall(calls: ToolCall[], part: ChunkToolCall): void {
  const index = typeof part.index === 'number' ? part.index : calls.length;
  let call = calls[index];
  if (call === undefined) {
    call = { id: '', type: 'function', function: { name: '', arguments: '' } };
    calls[index] = call;
  }
  if (part.id) call.id = part.id;
  if (part.function?.name) call.function.name += part.function.name;
  if (part.function?.arguments) call.function.arguments += part.function.arguments;
}

function endDelta(content: string | null, toolCalls: ToolCall[], finishReason: FinishReason, usage: Usage | null): ModelDelta {
  const message: AssistantMessage = { role: 'assistant', content };
  if (toolCalls.length > 0) {
    // Some providers omit ids; the pairing of calls and results needs one.
    toolCalls.forEach((call, index) => {
      if (call.id === '') call.id = `call_${index}_${Date.now().toString(36)}`;
    });
    message.tool_calls = toolCalls;
  }
  return { type: 'end', message, finishReason: toolCalls.length > 0 ? 'tool_calls' : finishReason, usage };
}

function normaliseUsage(raw: any): Usage | null {
  if (!raw || typeof raw !== 'object') return null;
  const prompt = Number(raw.prompt_tokens) || 0;
  const completion = Number(raw.completion_tokens) || 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: Number(raw.total_tokens) || prompt + completion };
}
