import { cachedJson } from './json-text.js';

const SENT = Symbol('sent body');

/**
 * A request body sent before, kept on its last message: the messages it held (a copy of the
 * array), its bytes, and where each message's text starts in them. `starts[messages.length]` is one
 * past the end of the last text.
 */
interface Sent {
  messages: readonly object[];
  bytes: Buffer;
  starts: number[];
}
type Holder = object & { [SENT]?: Sent };

const HEAD = '{"messages":[';

/** Shorter contexts are built from their texts alone: a copy would save little, and kept bytes cost memory. */
export const REUSE_FROM = 16;

/**
 * `{"messages":[…],` + `rest`, as UTF-8 bytes: a chat completions request body.
 *
 * Each call of a run, and each turn of a session, sends what the previous call sent (less the
 * oldest messages of a full window) with a few new messages at the end. Serialising 100 messages
 * again touched 100 objects scattered over the heap, built a string of 200 pieces, flattened it and
 * copied it into bytes: a third of what a continued session turn cost beyond a stateless one
 * (issue #13). So the bytes of a body of at least REUSE_FROM messages are kept on its last
 * message; the next body that holds that message looks back from its end for it, and the run of
 * messages before it that are the same objects, in the same order, as the end of the kept body is
 * one copy of those bytes. Only the messages around that run are serialised (from their cached
 * texts, json-text.ts). Same objects give the same text: messages are never changed once made.
 * A message holds the bytes of the last body that ended with it; a body that goes on from it takes
 * them off, so each conversation keeps about one body.
 */
export function messagesBody(messages: readonly object[], rest: string, restAscii: boolean): Buffer {
  const count = messages.length;
  const keep = count >= REUSE_FROM;
  let sent: Sent | undefined;
  let last = count - 1;
  if (keep) while (last >= 0 && (sent = (messages[last] as Holder)[SENT]) === undefined) last--;
  // messages[first..last] are sent.messages[from..]: the end of the kept body.
  let first = last + 1;
  let from = 0;
  if (sent !== undefined) {
    from = sent.messages.length;
    while (first > 0 && from > 0 && messages[first - 1] === sent.messages[from - 1]) {
      first--;
      from--;
    }
  }
  const starts = keep ? new Array<number>(count + 1) : undefined;
  const before = new Joined(HEAD, 0, starts);
  for (let index = 0; index < first; index++) before.add(messages[index]!, index);
  let copyFrom = 0;
  let copyTo = 0;
  if (sent !== undefined && first <= last) {
    if (first > 0) before.comma();
    copyFrom = sent.starts[from]!;
    copyTo = sent.starts[sent.messages.length]!;
    if (starts !== undefined) for (let index = first; index <= last; index++) starts[index] = sent.starts[from + index - first]! - copyFrom + before.bytes;
  }
  const after = new Joined('', before.bytes + copyTo - copyFrom, starts);
  for (let index = last + 1; index < count; index++) after.add(messages[index]!, index);
  after.end(count, rest, restAscii);

  const bytes = keep ? Buffer.allocUnsafeSlow(after.bytes) : Buffer.allocUnsafe(after.bytes);
  before.writeTo(bytes);
  if (copyTo > copyFrom) sent!.bytes.copy(bytes, before.bytes, copyFrom, copyTo);
  after.writeTo(bytes);
  if (keep) remember(messages, bytes, starts!, sent === undefined ? undefined : (messages[last] as Holder));
  return bytes;
}

/** Keeps a body on its last message, and takes the body it went on from off that one's last message. */
function remember(messages: readonly object[], bytes: Buffer, starts: number[], previous: Holder | undefined): void {
  const holder = messages[messages.length - 1] as Holder;
  if (previous !== undefined && previous !== holder && Object.isExtensible(previous)) previous[SENT] = undefined;
  // A frozen message keeps what it had: a kept body is never wrong, only perhaps no longer useful.
  if (!Object.isExtensible(holder)) return;
  const sent: Sent = { messages: messages.slice(), bytes, starts };
  if (SENT in holder) holder[SENT] = sent;
  else Object.defineProperty(holder, SENT, { value: sent, writable: true });
}

/** Part of a body as one string: texts joined with commas, where each starts, where the part ends. */
class Joined {
  private text: string;
  private ascii = true;
  /** Where this part ends in the body's bytes. */
  bytes: number;

  /** `text` (ASCII) opens the part, which starts at byte `at` of the body. */
  constructor(
    text: string,
    private readonly at: number,
    private readonly starts: number[] | undefined,
  ) {
    this.text = text;
    this.bytes = at + text.length;
  }

  comma(): void {
    this.text += ',';
    this.bytes++;
  }

  /** messages[index]'s text, after a comma unless it is the first message. */
  add(message: object, index: number): void {
    if (index > 0) this.comma();
    if (this.starts !== undefined) this.starts[index] = this.bytes;
    const cached = cachedJson(message);
    if (typeof cached === 'string') {
      this.text += cached;
      this.bytes += cached.length;
    } else {
      this.ascii = false;
      this.text += cached[0];
      this.bytes += Buffer.byteLength(cached[0]);
    }
  }

  /** After the last message: where its text ends, then `],` and the rest of the body. */
  end(count: number, rest: string, restAscii: boolean): void {
    if (this.starts !== undefined) this.starts[count] = this.bytes;
    this.text += `],${rest}`;
    this.bytes += 2 + (restAscii ? rest.length : Buffer.byteLength(rest));
    this.ascii &&= restAscii;
  }

  /** ASCII is copied one byte per character, without the scan for the UTF-8 length. */
  writeTo(bytes: Buffer): void {
    bytes.write(this.text, this.at, this.ascii ? 'latin1' : 'utf8');
  }
}
