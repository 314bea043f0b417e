const JSON_TEXT = Symbol('json text');
type Serialised = object & { [JSON_TEXT]?: string };

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
  let text = (value as Serialised)[JSON_TEXT];
  if (text === undefined) {
    text = JSON.stringify(value);
    // An object that cannot take the property (frozen) is serialised on each use instead.
    if (Object.isExtensible(value)) Object.defineProperty(value, JSON_TEXT, { value: text });
  }
  return text;
}

/** `[a,b,…]` from the cached texts. */
export function jsonArrayText(values: readonly object[]): string {
  let json = '[';
  for (let index = 0; index < values.length; index++) json += index === 0 ? jsonText(values[index]!) : `,${jsonText(values[index]!)}`;
  return `${json}]`;
}
