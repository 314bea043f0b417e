import { describe, expect, it } from 'vitest';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../src/json-depth.js';

/** `[{[{…}]}]` alternating, `depth` levels. */
const alternating = (depth: number) => {
  let open = '';
  let close = '';
  for (let level = 0; level < depth; level++) {
    const object = level % 2 === 1;
    open += object ? '{"a":' : '[';
    close = (object ? '}' : ']') + close;
  }
  return open + '0' + close;
};

describe('jsonTooDeep', () => {
  it('allows the limit and refuses one level past it, whichever brackets nest', () => {
    expect(jsonTooDeep(alternating(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(alternating(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonTooDeep('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(JSON.parse(alternating(MAX_JSON_DEPTH))).toBeDefined();
  });

  it('counts depth, not brackets: many flat ones, or ones inside strings, are fine', () => {
    const flat = JSON.stringify(Array.from({ length: 500 }, () => ({ a: [1] })));
    expect(jsonTooDeep(flat)).toBe(false);
    expect(jsonTooDeep(JSON.stringify({ text: '{['.repeat(500) }))).toBe(false);
    // Escaped quotes do not end a string early.
    expect(jsonTooDeep(JSON.stringify({ text: '"{'.repeat(500) }))).toBe(false);
  });
});
