import type { ChatMessage } from '../model/types.js';

/**
 * Caps a conversation at `max` messages for the model. System messages always stay (in place); of
 * the others, the oldest go first. The kept part never opens with tool results whose assistant
 * call was cut off, because providers reject a tool message without its call. An assistant
 * message and its tool results are contiguous in a valid history, so a suffix that does not start
 * with a tool message keeps every pair whole.
 *
 * When the system messages alone exceed `max`, they are all that is left.
 */
export function trimHistory(messages: readonly ChatMessage[], max: number): ChatMessage[] {
  let systems = 0;
  for (const message of messages) if (message.role === 'system') systems++;
  // How many of the others go first, oldest first; then any tool results at the front of what is left.
  const drop = Math.max(0, messages.length - systems - Math.max(0, max - systems));
  const kept: ChatMessage[] = [];
  let dropped = 0;
  let cut = 0;
  for (; cut < messages.length; cut++) {
    const message = messages[cut]!;
    if (message.role === 'system') kept.push(message);
    else if (dropped < drop || message.role === 'tool') dropped++;
    else break;
  }
  if (dropped === 0) return [...messages];
  // One pass over the roles above, and copies of references here: a session turn trims a context
  // of SESSION_MAX_MESSAGES + 2 messages scattered over the heap (issue #13).
  return kept.length === 0 ? messages.slice(cut) : kept.concat(messages.slice(cut));
}
