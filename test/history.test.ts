import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { trimHistory } from '../src/agent/history.js';
import type { ChatMessage } from '../src/model/types.js';

// A valid history is a sequence of blocks: a user or assistant text, a system message, or an
// assistant tool-call message followed at once by one result per call.
let nextId = 0;
const block = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<ChatMessage[]>([{ role: 'user', content: 'u' }], [{ role: 'assistant', content: 'a' }]) },
  { weight: 1, arbitrary: fc.constant<ChatMessage[]>([{ role: 'system', content: 's' }]) },
  {
    weight: 3,
    arbitrary: fc.integer({ min: 1, max: 4 }).map((calls): ChatMessage[] => {
      const ids = Array.from({ length: calls }, () => `call_${nextId++}`);
      return [
        { role: 'assistant', content: null, tool_calls: ids.map((id) => ({ id, type: 'function', function: { name: 't', arguments: '{}' } })) },
        ...ids.map((id): ChatMessage => ({ role: 'tool', tool_call_id: id, content: 'r' })),
      ];
    }),
  },
);
const history = fc.array(block, { maxLength: 40 }).map((blocks) => blocks.flat());

/** The provider contract: each tool_calls message is followed by exactly its results, and no result stands alone. */
function isValid(messages: readonly ChatMessage[]): boolean {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.role === 'tool') return false;
    if (message.role === 'assistant' && message.tool_calls) {
      const ids = message.tool_calls.map((call) => call.id);
      const results = messages.slice(i + 1, i + 1 + ids.length);
      if (results.length !== ids.length || results.some((result, k) => result.role !== 'tool' || result.tool_call_id !== ids[k])) return false;
      i += ids.length;
    }
  }
  return true;
}

const nonSystem = (messages: readonly ChatMessage[]) => messages.filter((message) => message.role !== 'system');

describe('trimHistory', () => {
  it('keeps the system messages and the longest valid suffix that fits, never splitting a tool call from its results', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 60 }), (messages, max) => {
        const trimmed = trimHistory(messages, max);
        const systems = messages.filter((message) => message.role === 'system');
        expect(trimmed.length).toBeLessThanOrEqual(Math.max(max, systems.length));
        expect(isValid(trimmed)).toBe(true);
        expect(trimmed.filter((message) => message.role === 'system')).toEqual(systems);

        const kept = nonSystem(trimmed);
        const all = nonSystem(messages);
        expect(all.slice(all.length - kept.length)).toEqual(kept);
        // Maximal: one more message would break the cap or start with an orphaned tool result.
        const budget = Math.max(0, max - systems.length);
        for (let start = all.length - kept.length - 1; start >= 0; start--) {
          const longer = all.slice(start);
          expect(longer.length > budget || longer[0]!.role === 'tool').toBe(true);
        }
        // Order is the original order.
        let cursor = 0;
        for (const message of trimmed) {
          cursor = messages.indexOf(message, cursor) + 1;
          expect(cursor).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('returns the history unchanged when it fits', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
    ];
    expect(trimHistory(messages, 2)).toEqual(messages);
  });

  it('drops a whole tool group rather than half of it, at the cap and one past it', () => {
    const group: ChatMessage[] = [
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 't', arguments: '{}' } }, { id: 'c2', type: 'function', function: { name: 't', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '1' },
      { role: 'tool', tool_call_id: 'c2', content: '2' },
    ];
    const messages: ChatMessage[] = [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }, ...group, { role: 'assistant', content: 'a' }, { role: 'user', content: 'next' }];
    // 7 messages: a cap of 6 drops only the oldest user message.
    expect(trimHistory(messages, 6)).toEqual([messages[0], ...group, messages[5], messages[6]]);
    // A cap of 5 would start at the first tool result: the whole group goes instead.
    expect(trimHistory(messages, 5)).toEqual([messages[0], messages[5], messages[6]]);
  });
});
