import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SseDataSplitter } from '../src/model/sse-data.js';
import { StreamReader } from '../src/model/openai-client.js';
import type { ModelDelta } from '../src/model/types.js';

/** Cuts `whole` at the given offsets (any order, duplicates allowed) into consecutive pieces. */
function cut<T extends string | Buffer>(whole: T, offsets: number[]): T[] {
  const points = [...new Set(offsets.map((offset) => offset % (whole.length + 1)))].sort((a, b) => a - b);
  const pieces: T[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(whole.slice(start, point) as T);
    start = point;
  }
  pieces.push(whole.slice(start) as T);
  return pieces;
}

function split(pieces: string[]): string[] {
  const splitter = new SseDataSplitter();
  return [...pieces.flatMap((piece) => splitter.push(piece)), ...splitter.end()];
}

// A data value never holds a line end; anything else goes, including the text "data:" and colons.
const value = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', 'é', '😀', '{', '"', 'd', 't'), maxLength: 12 });
const event = fc.record({
  data: fc.array(value, { minLength: 1, maxLength: 3 }),
  comment: fc.option(value),
  other: fc.option(fc.constantFrom('event: message', 'id: 7', 'retry: 10', 'datum: no', 'data-x: no')),
  space: fc.boolean(),
});

describe('SSE data splitter', () => {
  it('yields the data of every event, whatever the line ends and chunk boundaries', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r'), fc.array(fc.nat(), { maxLength: 12 }), (events, eol, offsets) => {
        const text = events
          .map((e) => {
            const lines = [...(e.comment === null ? [] : [`:${e.comment}`]), ...(e.other === null ? [] : [e.other])];
            for (const data of e.data) lines.push(`data:${e.space ? ' ' : ''}${data}`);
            return lines.map((line) => line + eol).join('') + eol;
          })
          .join('');
        // Without our space, a value's own leading space is the one the parser strips.
        const expected = events.map((e) => e.data.map((data) => (e.space || !data.startsWith(' ') ? data : data.slice(1))).join('\n'));
        expect(split(cut(text, offsets))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('takes a CRLF split across two chunks as one line end, not two', () => {
    expect(split(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual(['a\nb']);
  });

  it('skips comments and fields other than data, and an event with no data', () => {
    expect(split([': keep-alive\n\nevent: ping\nid: 3\n\ndata\n\ndata:x\n\n'])).toEqual(['', 'x']);
  });

  it('delivers a last event whose blank line never came, and nothing for a trailing comment', () => {
    expect(split(['data: {"a":1}\n\ndata: [DONE]'])).toEqual(['{"a":1}', '[DONE]']);
    expect(split(['data: x\n\n: bye'])).toEqual(['x']);
  });
});

/** The bytes of an OpenAI stream answering `content` in pieces, then a tool call split in two, then usage. */
function openAiStream(pieces: string[]): string {
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return [
    chunk({ role: 'assistant', content: '' }),
    chunk({ reasoning_content: 'thinking…' }),
    ...pieces.map((content) => chunk({ content })),
    chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'calc', arguments: '{"expr' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: 'ession":"1+1"}' } }] }),
    chunk({}, 'tool_calls'),
    `data: ${JSON.stringify({ id: 'c', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })}\n\n`,
    'data: [DONE]\n\n',
  ].join('');
}

describe('stream reader', () => {
  it('gives the same deltas and message for any byte boundaries, multi-byte characters included', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\n', '"', '中'), minLength: 1, maxLength: 6 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (pieces, offsets) => {
        const reader = new StreamReader({});
        const deltas: ModelDelta[] = [];
        for (const bytes of cut(Buffer.from(openAiStream(pieces)), offsets)) reader.data(bytes, deltas);
        reader.end(deltas);
        const content = pieces.join('');
        expect(deltas.filter((d) => d.type === 'content').map((d) => (d as { text: string }).text).join('')).toBe(content);
        expect(deltas.filter((d) => d.type === 'reasoning')).toEqual([{ type: 'reasoning', text: 'thinking…' }]);
        expect(deltas.at(-1)).toEqual({
          type: 'end',
          message: {
            role: 'assistant',
            content: content === '' ? null : content,
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'calc', arguments: '{"expression":"1+1"}' } }],
          },
          finishReason: 'tool_calls',
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
        });
        expect(reader.started).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('ignores whatever follows [DONE]', () => {
    const reader = new StreamReader({});
    const deltas: ModelDelta[] = [];
    reader.data(Buffer.from('data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\ndata: not json\n\n'), deltas);
    reader.end(deltas);
    expect(deltas.map((d) => d.type)).toEqual(['content', 'end']);
  });
});
