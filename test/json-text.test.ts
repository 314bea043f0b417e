import { describe, expect, it } from 'vitest';
import { jsonArrayText, jsonText } from '../src/model/json-text.js';

describe('jsonText (a message or tool spec serialised once)', () => {
  it('is the JSON of the object, and the cached text never shows up in the object', () => {
    const message = { role: 'user', content: 'hi' };
    expect(jsonText(message)).toBe('{"role":"user","content":"hi"}');
    expect(jsonText(message)).toBe('{"role":"user","content":"hi"}');
    expect(JSON.stringify(message)).toBe('{"role":"user","content":"hi"}');
    expect(Object.keys(message)).toEqual(['role', 'content']);
  });

  it('a changed copy (spread or Object.assign) is serialised as it is, not with the original text', () => {
    const message = { role: 'assistant', content: 'first' };
    jsonText(message);
    expect(jsonText({ ...message, content: 'second' })).toBe('{"role":"assistant","content":"second"}');
    expect(jsonText(Object.assign({}, message, { content: 'third' }))).toBe('{"role":"assistant","content":"third"}');
  });

  it('a frozen object is serialised on each use', () => {
    const spec = Object.freeze({ type: 'function', function: { name: 'f' } });
    expect(jsonText(spec)).toBe('{"type":"function","function":{"name":"f"}}');
    expect(jsonText(spec)).toBe('{"type":"function","function":{"name":"f"}}');
  });

  it('an array of cached texts says whether all of it is ASCII, before and after the texts are cached', () => {
    const plain = { role: 'user', content: 'hi' };
    const accented = { role: 'user', content: 'café' };
    for (let round = 0; round < 2; round++) {
      expect(jsonArrayText([plain, plain])).toEqual({ text: '[{"role":"user","content":"hi"},{"role":"user","content":"hi"}]', ascii: true });
      expect(jsonArrayText([plain, accented])).toEqual({ text: '[{"role":"user","content":"hi"},{"role":"user","content":"café"}]', ascii: false });
      expect(jsonText(accented)).toBe('{"role":"user","content":"café"}');
    }
    expect(jsonArrayText([])).toEqual({ text: '[]', ascii: true });
  });
});
