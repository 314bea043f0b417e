const JSON_TEXT = Symbol('json text');
/** The cached text itself when it is all ASCII; otherwise the text in a one-element array. */
type Cached = string | [string];
type Serialised = object & { [JSON_TEXT]?: Cached };

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
  const text = cached(value);
  return typeof text === 'string' ? text : text[0];
}

/**
 * `[a,b,…]` from the cached texts, and whether every one of them is ASCII. Whether a text is ASCII
 * is found once, when it is cached: a request body known to be ASCII is encoded without the scan
 * for its UTF-8 length (asciiBytes), which for a session's 100-message context was a fifth of what
 * building the body cost.
 */
export function jsonArrayText(values: readonly object[]): { text: string; ascii: boolean } {
  let text = '[';
  let ascii = true;
  for (let index = 0; index < values.length; index++) {
    let part = cached(values[index]!);
    if (typeof part !== 'string') {
      ascii = false;
      part = part[0];
    }
    text += index === 0 ? part : `,${part}`;
  }
  return { text: `${text}]`, ascii };
}

export const isAscii = (text: string): boolean => !NON_ASCII.test(text);

/** The UTF-8 bytes of a text known to be ASCII: one byte per character, copied without a scan. */
export function asciiBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafe(text.length);
  bytes.write(text, 0, 'latin1');
  return bytes;
}

function cached(value: object): Cached {
  let text = (value as Serialised)[JSON_TEXT];
  if (text === undefined) {
    const json = JSON.stringify(value);
    text = NON_ASCII.test(json) ? [json] : json;
    // An object that cannot take the property (frozen) is serialised on each use instead.
    if (Object.isExtensible(value)) Object.defineProperty(value, JSON_TEXT, { value: text });
  }
  return text;
}
