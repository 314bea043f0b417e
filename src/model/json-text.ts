const JSON_TEXT = Symbol('json text');
/** The cached text itself when it is all ASCII; otherwise the text in a one-element array. */
export type CachedJson = string | [string];
type Serialised = object & { [JSON_TEXT]?: CachedJson };

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * The JSON text of a message or a tool's spec, kept while the object lives. A context is sent again
 * on every step of a run and on every turn of a session (the history window holds the same
 * objects), the same tool specs go with every model call, and a turn's commit stores the messages
 * the model call already serialised: each is serialised once instead of at every use (issue #13).
 * Only for objects never changed once made (a changed message is always a new object).
 *
 * The text sits on the object itself, under a symbol that is not enumerable: a spread or
 * `Object.assign` copy does not carry it, JSON.stringify does not see it, and a read is a property
 * load. A WeakMap did the same with a hash lookup per object per use, and its entries (one per
 * message in every history window) were ephemerons that each major GC had to walk.
 */
export function jsonText(value: object): string {
  const text = cachedJson(value);
  return typeof text === 'string' ? text : text[0];
}

/**
 * `[a,b,…]` from the cached texts, and whether every one of them is ASCII (then the bytes are the
 * characters, with no scan for the UTF-8 length: see body-bytes.ts).
 */
export function jsonArrayText(values: readonly object[]): { text: string; ascii: boolean } {
  let text = '[';
  let ascii = true;
  for (let index = 0; index < values.length; index++) {
    let part = cachedJson(values[index]!);
    if (typeof part !== 'string') {
      ascii = false;
      part = part[0];
    }
    text += index === 0 ? part : `,${part}`;
  }
  return { text: `${text}]`, ascii };
}

export const isAscii = (text: string): boolean => !NON_ASCII.test(text);

/** jsonText, and whether the text is ASCII (found once, when it is cached), without an object per call. */
export function cachedJson(value: object): CachedJson {
  let text = (value as Serialised)[JSON_TEXT];
  if (text === undefined) {
    const json = JSON.stringify(value);
    text = NON_ASCII.test(json) ? [json] : json;
    // An object that cannot take the property (frozen) is serialised on each use instead.
    if (Object.isExtensible(value)) Object.defineProperty(value, JSON_TEXT, { value: text });
  }
  return text;
}
