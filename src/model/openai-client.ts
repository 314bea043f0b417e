import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { ChassisError } from '../errors.js';
import type { Config } from '../config.js';
import type { AssistantMessage, FinishReason, ModelClient, ModelDelta, ModelRequest, ToolCall, Usage } from './types.js';
import { mapUpstreamError, retryDelayMs, sleep } from './upstream-errors.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

type ChunkToolCall = { index: number; id?: string; function?: { name?: string; arguments?: string } };

/**
 * The only file that imports the `openai` SDK. We keep its parsing and error types, and own the parts
 * an agent server needs tighter: a keep-alive undici agent with a connect timeout, an idle timeout
 * between chunks (also the wait for the first byte), and retries of the opening request only, so a
 * delta that reached the client is never sent twice.
 */
export function createOpenAIModelClient(config: Config): ModelClient {
  const dispatcher = new Agent({
    connect: { timeout: config.upstreamConnectTimeoutSeconds * 1000 },
    keepAliveTimeout: 30_000,
    // The idle timer below is the real bound; these only stop undici from cutting a slow model short.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const configured = config.openaiApiKey !== undefined || config.openaiBaseUrl !== undefined;
  const secrets = config.openaiApiKey === undefined ? [] : [config.openaiApiKey];
  const sdk = new OpenAI({
    apiKey: config.openaiApiKey ?? 'none',
    baseURL: config.openaiBaseUrl ?? OPENAI_BASE_URL,
    maxRetries: 0,
    timeout: config.runDeadlineSeconds * 1000,
    fetch: undiciFetch as unknown as typeof fetch,
    fetchOptions: { dispatcher } as Record<string, unknown>,
  });
  const idleMs = config.upstreamIdleTimeoutSeconds * 1000;

  async function* call(request: ModelRequest): AsyncGenerator<ModelDelta> {
    if (!configured) {
      throw new ChassisError(
        503,
        'MODEL_NOT_CONFIGURED',
        'No model provider is configured: set OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for any OpenAI-compatible server)',
      );
    }
    const body: Record<string, unknown> = {
      model: request.model,
      messages: request.messages,
      stream: request.stream,
    };
    if (request.tools.length > 0) body.tools = request.tools;
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    if (request.stream) body.stream_options = { include_usage: true };

    for (let attempt = 0; ; attempt++) {
      const idle = new IdleTimer(idleMs, request.signal);
      try {
        const response = await sdk.chat.completions.create(body as never, { signal: idle.signal });
        idle.touch();
        if (request.stream) {
          yield* readStream(response as unknown as AsyncIterable<Record<string, any>>, idle);
        } else {
          yield* readCompletion(response as unknown as Record<string, any>);
        }
        return;
      } catch (error) {
        const mapped = mapUpstreamError(error, { timedOut: idle.fired, aborted: request.signal.aborted, secrets });
        const delay = attempt < config.upstreamMaxRetries && !idle.started ? retryDelayMs(mapped, attempt, config) : null;
        if (delay === null) throw mapped;
        await sleep(delay, request.signal);
        if (request.signal.aborted) throw mapUpstreamError(request.signal.reason, { aborted: true, timedOut: false, secrets });
      } finally {
        idle.stop();
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

async function* readCompletion(completion: Record<string, any>): AsyncGenerator<ModelDelta> {
  const choice = completion.choices?.[0];
  const message = choice?.message ?? {};
  if (typeof message.reasoning_content === 'string' && message.reasoning_content !== '') {
    yield { type: 'reasoning', text: message.reasoning_content };
  }
  const content: string | null = typeof message.content === 'string' ? message.content : null;
  if (content) yield { type: 'content', text: content };
  const toolCalls: ToolCall[] = Array.isArray(message.tool_calls)
    ? message.tool_calls.map((call: any) => ({
        id: String(call.id ?? ''),
        type: 'function' as const,
        function: { name: String(call.function?.name ?? ''), arguments: String(call.function?.arguments ?? '') },
      }))
    : [];
  yield endDelta(content, toolCalls, choice?.finish_reason ?? 'stop', normaliseUsage(completion.usage));
}

async function* readStream(stream: AsyncIterable<Record<string, any>>, idle: IdleTimer): AsyncGenerator<ModelDelta> {
  let content = '';
  const calls: ToolCall[] = [];
  let finishReason: FinishReason = 'stop';
  let usage: Usage | null = null;
  for await (const chunk of stream) {
    idle.touch(true);
    if (chunk.usage) usage = normaliseUsage(chunk.usage);
    const choice = chunk.choices?.[0];
    if (choice === undefined) continue;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (delta === undefined || delta === null) continue;
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === 'string' && reasoning !== '') yield { type: 'reasoning', text: reasoning };
    if (typeof delta.content === 'string' && delta.content !== '') {
      content += delta.content;
      yield { type: 'content', text: delta.content };
    }
    if (delta.tool_calls) for (const part of delta.tool_calls as ChunkToolCall[]) mergeToolCall(calls, part);
  }
  // The SDK ends an aborted stream quietly: an abort must not pass for a complete answer.
  if (idle.signal.aborted) throw idle.signal.reason;
  yield endDelta(content === '' ? null : content, calls.filter(Boolean), finishReason, usage);
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

/** Aborts the attempt when nothing arrives for `ms` (first byte included), or when the run is aborted. */
class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  private readonly onOuterAbort: () => void;
  fired = false;
  /** True once a chunk was read: from then on the call is never retried. */
  started = false;

  constructor(
    private readonly ms: number,
    private readonly outer: AbortSignal,
  ) {
    this.timer = setTimeout(this.fire, ms);
    this.onOuterAbort = () => this.controller.abort(outer.reason);
    if (outer.aborted) this.onOuterAbort();
    else outer.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private readonly fire = () => {
    this.fired = true;
    this.controller.abort(new Error('upstream idle timeout'));
  };

  touch(chunk = false): void {
    if (chunk) this.started = true;
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.outer.removeEventListener('abort', this.onOuterAbort);
  }
}
