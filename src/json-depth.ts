/**
 * How deep JSON text nests, found by one pass over the characters, before anything parses it.
 * JSON.parse copes with deep nesting, but what comes after it does not: JSON.stringify, schema
 * validation and every recursive walk overflow the stack at a few thousand levels (a body under
 * 10 KB), which used to surface as a 500. No JSON this server reads needs more than a few dozen.
 */
export const MAX_JSON_DEPTH = 64;

/** True when `text` opens more than `max` arrays/objects inside one another (brackets inside strings do not count). */
export function jsonTooDeep(text: string, max: number = MAX_JSON_DEPTH): boolean {
  // Text with no more than `max` brackets that open cannot nest deeper: counting them with indexOf
  // is native and several times cheaper than the walk below, and it settles nearly every text we
  // read (each streamed chunk of a provider's answer is checked).
  if (openings(text, '{', max) + openings(text, '[', max) <= max) return false;
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c /* \ */) index++;
      else if (char === 0x22 /* " */) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x7b /* { */ || char === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (char === 0x7d /* } */ || char === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** How many times `bracket` occurs in `text`, counting no further than `max` + 1. */
function openings(text: string, bracket: string, max: number): number {
  let count = 0;
  for (let index = text.indexOf(bracket); index !== -1 && count <= max; index = text.indexOf(bracket, index + 1)) count++;
  return count;
}
