// The Responses encoder fed recorded run events: the named events a client reads, in order, and the
// JSON fold of the same events (the two must say the same thing).
import { describe, expect, it } from 'vitest';
import type { Frame } from '../src/http/openai/openai-run.js';
import { ResponseEncoder, responseOf, type ResponseEncoding } from '../src/http/openai/responses-encoder.js';

const encoding: ResponseEncoding = {
  id: 'resp_x',
  createdAt: 1700000000,
  model: 'writer',
  clientTools: new Set(['lookup']),
  instructions: null,
  previousResponseId: null,
  store: true,
  metadata: {},
  maxOutputTokens: null,
  temperature: null,
  toolChoice: 'auto',
  tools: [],
  textFormat: { type: 'text' },
};
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const run = [
  { type: 'run_started', run_id: 'run_x', session_id: null },
  { type: 'reasoning', content: 'think' },
  { type: 'content', content: 'Hi "there"' },
  { type: 'content', content: '' },
  { type: 'tool_call', id: 'call_s', name: 'counter', arguments: '{}' },
  { type: 'tool_result', id: 'call_s', name: 'counter', result: 'ran 1' },
  { type: 'content', content: '!' },
  { type: 'tool_call', id: 'call_c', name: 'lookup', arguments: '{"q":1}' },
  { type: 'done', run_id: 'run_x', session_id: null, stop_reason: 'tool_calls', usage },
];

/** Each frame as the client parses it, checking the `event:` name matches the data's type. */
function parsed(frames: Frame[]) {
  return frames.map((frame) => {
    if (typeof frame === 'string') throw new Error('a Responses frame always names its event');
    const data = JSON.parse(frame.data);
    expect(data.type).toBe(frame.event);
    return data;
  });
}

describe('ResponseEncoder', () => {
  it('writes reasoning, one message for the text of every step, only client calls, and the final response', () => {
    const encoder = new ResponseEncoder(encoding);
    const events = parsed(run.flatMap((event) => encoder.frames(event)));
    expect(events.map((event) => [event.type, event.sequence_number])).toEqual(
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.reasoning_text.delta',
        'response.reasoning_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.output_item.added',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.output_item.done',
        'response.completed',
      ].map((type, index) => [type, index]),
    );
    expect(events[2].item).toEqual({ id: 'rs_x_0', type: 'reasoning', status: 'in_progress', summary: [], content: [] });
    expect(events[9]).toMatchObject({ item_id: 'msg_x_1', output_index: 1, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    expect(events[12]).toMatchObject({ item_id: 'msg_x_1', output_index: 1, text: 'Hi "there"!' });
    expect(events[15].item).toEqual({ id: 'fc_x_2', type: 'function_call', status: 'in_progress', call_id: 'call_c', name: 'lookup', arguments: '' });
    expect(events[17]).toMatchObject({ item_id: 'fc_x_2', output_index: 2, name: 'lookup', arguments: '{"q":1}' });
    const final = events.at(-1).response;
    expect(final.output).toEqual([
      { id: 'rs_x_0', type: 'reasoning', status: 'completed', summary: [], content: [{ type: 'reasoning_text', text: 'think' }] },
      { id: 'msg_x_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hi "there"!', annotations: [], logprobs: [] }] },
      { id: 'fc_x_2', type: 'function_call', status: 'completed', call_id: 'call_c', name: 'lookup', arguments: '{"q":1}' },
    ]);
    expect(final).toMatchObject({ status: 'completed', usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 } });
    // The JSON answer is the same fold.
    expect(responseOf(run, encoding, 'tool_calls', usage)).toEqual(final);
  });

  it('a run cut short is incomplete; an empty answer is still one message; a failure ends with response.failed', () => {
    const short = parsed(new ResponseEncoder(encoding).frames({ type: 'done', stop_reason: 'max_steps', usage }));
    expect(short.map((event) => event.type)).toEqual([
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.incomplete',
    ]);
    expect(short.at(-1).response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    expect(short.at(-1).response.output[0].content[0].text).toBe('');

    const encoder = new ResponseEncoder(encoding);
    encoder.frames({ type: 'content', content: 'partial' });
    const failed = parsed(encoder.frames({ type: 'error', run_id: 'run_x', detail: 'The model provider failed', code: 'UPSTREAM_ERROR' }));
    expect(failed.map((event) => event.type)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.failed']);
    expect(failed.at(-1).response).toMatchObject({ status: 'failed', error: { code: 'upstream_error', message: 'The model provider failed' }, usage: null });
    expect(failed.at(-1).response.output[0].status).toBe('incomplete');
  });
});
