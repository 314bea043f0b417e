// The Chat Completions encoders fed recorded run events: the exact frames a client reads, and the
// JSON fold of the same events (the two must say the same thing).
import { describe, expect, it } from 'vitest';
import { ChunkEncoder, chatCompletionOf, type ChatEncoding } from '../src/http/openai/chat-encoder.js';

const encoding = (includeUsage: boolean): ChatEncoding => ({ id: 'chatcmpl-x', created: 1700000000, model: 'writer', clientTools: new Set(['lookup']), includeUsage });
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const run = [
  { type: 'run_started', run_id: 'run_x', session_id: null },
  { type: 'reasoning', content: 'think' },
  { type: 'content', content: 'Hi "there"' },
  { type: 'content', content: '' },
  { type: 'tool_call', id: 'call_s', name: 'counter', arguments: '{}' },
  { type: 'tool_result', id: 'call_s', name: 'counter', result: 'ran 1' },
  { type: 'tool_call', id: 'call_c', name: 'lookup', arguments: '{"q":1}' },
  { type: 'done', run_id: 'run_x', session_id: null, stop_reason: 'tool_calls', usage },
];
const head = '{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"writer","system_fingerprint":null,"choices":[';

describe('ChunkEncoder', () => {
  it('writes role, reasoning, content, only client tool calls, finish, usage and [DONE]', () => {
    const encoder = new ChunkEncoder(encoding(true));
    const frames = run.flatMap((event) => encoder.frames(event));
    const choice = (delta: string, finish = 'null') => `${head}{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}],"usage":null}`;
    expect(frames).toEqual([
      choice('{"role":"assistant","content":"","refusal":null}'),
      choice('{"reasoning_content":"think"}'),
      choice('{"content":"Hi \\"there\\""}'),
      choice('{"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"lookup","arguments":"{\\"q\\":1}"}}]}'),
      choice('{}', '"tool_calls"'),
      `${head}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
      '[DONE]',
    ]);
    for (const frame of frames.slice(0, -1)) JSON.parse(frame);
  });

  it('without include_usage: no usage field, no usage chunk; max_steps reads as length; an error is one OpenAI error frame', () => {
    const encoder = new ChunkEncoder(encoding(false));
    const done = encoder.frames({ type: 'done', stop_reason: 'max_steps', usage });
    expect(done).toEqual([`${head}{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}`, '[DONE]']);
    expect(encoder.frames({ type: 'error', detail: 'The model timed out', code: 'UPSTREAM_TIMEOUT' }, 504)).toEqual([
      '{"error":{"message":"The model timed out","type":"server_error","code":"upstream_timeout","param":null}}',
    ]);
  });
});

describe('chatCompletionOf', () => {
  it('folds the same events into one chat.completion', () => {
    expect(chatCompletionOf(run, encoding(false), usage, 'tool_calls')).toEqual({
      id: 'chatcmpl-x',
      object: 'chat.completion',
      created: 1700000000,
      model: 'writer',
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Hi "there"',
            refusal: null,
            reasoning_content: 'think',
            tool_calls: [{ id: 'call_c', type: 'function', function: { name: 'lookup', arguments: '{"q":1}' } }],
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage,
    });
  });
});
