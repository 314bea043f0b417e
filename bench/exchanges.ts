// One "request" of a scenario, against the chassis or against the fake upstream alone, checked for
// a full and correct answer. A wrong or partial answer throws, and the load generator counts it.

import type { Dispatcher } from 'undici';
import { modeDefault, type FakeMode } from '../test/support/fake-upstream.js';

export type { FakeMode };
import { sseData } from './sse-frames.js';

export type Transport = 'json' | 'sse';

export interface ExchangeHooks {
  /** Called once, when the first content token has arrived. */
  firstToken?(): void;
}

/** Resolves with ms from start to the first content token for streams, undefined for JSON. */
export type Exchange = (client: Dispatcher, hooks?: ExchangeHooks) => Promise<number | undefined>;

/** The 50-word answer the fake upstream gives in both modes (read from the fake, not copied). */
export const ANSWER: string = (() => {
  const step = modeDefault('text50');
  if (typeof step === 'function' || step.kind !== 'text') throw new Error('fake upstream text50 is not a text step');
  return step.content;
})();

const PROMPT = 'Please answer in fifty words. What is 2 + 2?';
/** What the fake's tool2 mode asks for: calculate add 2 2. */
const TOOL_RESULT = '4';

export class WrongAnswer extends Error {}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new WrongAnswer(message);
}

async function postJson(client: Dispatcher, path: string, body: string): Promise<Dispatcher.ResponseData> {
  return client.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
}

async function failStatus(response: Dispatcher.ResponseData): Promise<never> {
  const text = await response.body.text();
  throw new WrongAnswer(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
}

// ---------------------------------------------------------------------------------------------
// The chassis: POST /api/v1/agent/completion in client-side mode.

/** `history`: earlier messages the client sends before its question (a client-side conversation). */
export function chassisExchange(mode: FakeMode, transport: Transport, history: readonly unknown[] = []): Exchange {
  const body = JSON.stringify({ messages: [...history, { role: 'user', content: PROMPT }], ...(transport === 'sse' ? { stream: true } : {}) });
  const path = '/api/v1/agent/completion';

  if (transport === 'json') {
    return async (client) => {
      const response = await postJson(client, path, body);
      if (response.statusCode !== 200) return failStatus(response);
      const answer = (await response.body.json()) as { content?: unknown; stop_reason?: unknown; tool_calls?: { function?: { name?: unknown } }[] };
      check(answer.content === ANSWER, `content is not the 50-word answer: ${String(answer.content).slice(0, 80)}`);
      check(answer.stop_reason === 'stop', `stop_reason ${String(answer.stop_reason)}`);
      if (mode === 'tool2') check(answer.tool_calls?.[0]?.function?.name === 'calculate', 'no calculate call in tool_calls');
      return undefined;
    };
  }

  return async (client, hooks) => {
    const start = performance.now();
    const response = await postJson(client, path, body);
    if (response.statusCode !== 200) return failStatus(response);
    check(String(response.headers['content-type']).startsWith('text/event-stream'), `content-type ${String(response.headers['content-type'])}`);
    let content = '';
    let ttft: number | undefined;
    let toolResult: string | undefined;
    let done = false;
    for await (const data of sseData(response.body)) {
      check(!done, 'an event after done');
      const event = JSON.parse(data) as { type: string; content?: string; result?: string; detail?: string };
      if (event.type === 'content') {
        if (ttft === undefined) {
          ttft = performance.now() - start;
          hooks?.firstToken?.();
        }
        content += event.content;
      } else if (event.type === 'tool_result') toolResult = event.result;
      else if (event.type === 'error') throw new WrongAnswer(`error event: ${event.detail}`);
      else if (event.type === 'done') done = true;
    }
    check(done, 'stream ended without a done event');
    check(content === ANSWER, `joined content deltas are not the 50-word answer: ${content.slice(0, 80)}`);
    if (mode === 'tool2') check(toolResult === TOOL_RESULT, `tool_result ${toolResult}`);
    return ttft;
  };
}

// ---------------------------------------------------------------------------------------------
// The fake upstream alone: the same chat-completions calls the chassis makes for one run (two for
// tool2: the tool call, then the answer after the tool result), with the same tools offered.

export interface UpstreamShape {
  /** The path of chat completions under the fake's origin, e.g. /v1/chat/completions */
  path: string;
  model: string;
  tools: unknown[];
}

interface StepResult {
  content: string;
  toolCalls: { id: string; name: string; arguments: string }[];
}

export function upstreamExchange(mode: FakeMode, transport: Transport, shape: UpstreamShape): Exchange {
  const stream = transport === 'sse';
  const user = { role: 'user', content: PROMPT };
  const requestBody = (messages: unknown[]): string =>
    JSON.stringify({
      model: shape.model,
      messages,
      stream,
      ...(shape.tools.length > 0 ? { tools: shape.tools } : {}),
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    });
  const firstBody = requestBody([user]);

  async function step(client: Dispatcher, body: string, onFirstToken: () => void): Promise<StepResult> {
    const response = await postJson(client, shape.path, body);
    if (response.statusCode !== 200) return failStatus(response);
    if (!stream) {
      const completion = (await response.body.json()) as {
        choices?: { message?: { content?: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[] } }[];
      };
      const message = completion.choices?.[0]?.message;
      return {
        content: message?.content ?? '',
        toolCalls: (message?.tool_calls ?? []).map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })),
      };
    }
    let content = '';
    const toolCalls: StepResult['toolCalls'] = [];
    let done = false;
    for await (const data of sseData(response.body)) {
      check(!done, 'a chunk after [DONE]');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as {
        choices?: { delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] } }[];
      };
      const delta = chunk.choices?.[0]?.delta;
      if (delta === undefined) continue;
      if (typeof delta.content === 'string' && delta.content !== '') {
        if (content === '') onFirstToken();
        content += delta.content;
      }
      for (const part of delta.tool_calls ?? []) {
        const call = (toolCalls[part.index] ??= { id: '', name: '', arguments: '' });
        if (part.id) call.id = part.id;
        call.name += part.function?.name ?? '';
        call.arguments += part.function?.arguments ?? '';
      }
    }
    check(done, 'stream ended without [DONE]');
    return { content, toolCalls };
  }

  return async (client, hooks) => {
    const start = performance.now();
    let ttft: number | undefined;
    const onFirstToken = () => {
      ttft = performance.now() - start;
      hooks?.firstToken?.();
    };
    let result = await step(client, firstBody, onFirstToken);
    if (mode === 'tool2') {
      const call = result.toolCalls[0];
      check(call !== undefined && call.name === 'calculate' && result.toolCalls.length === 1, 'step 1 is not one calculate call');
      const assistant = { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] };
      const tool = { role: 'tool', tool_call_id: call.id, name: call.name, content: TOOL_RESULT };
      result = await step(client, requestBody([user, assistant, tool]), onFirstToken);
    }
    check(result.toolCalls.length === 0, 'the last step asked for tools');
    check(result.content === ANSWER, `content is not the 50-word answer: ${result.content.slice(0, 80)}`);
    return stream ? ttft : undefined;
  };
}
