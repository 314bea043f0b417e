import type { ChatMessage } from './types.js';

const texts = new WeakMap<ChatMessage, string>();

/**
 * A message's JSON text, kept while the message lives. A context is sent again on every step of a
 * run and on every turn of a session (the history window holds the same objects), and the turn's
 * commit stores the same messages: each is serialised once instead of at every use (issue #13).
 * Messages are never changed once made.
 */
export function messageJson(message: ChatMessage): string {
  let text = texts.get(message);
  if (text === undefined) {
    text = JSON.stringify(message);
    texts.set(message, text);
  }
  return text;
}
