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
  const others: number[] = [];
  messages.forEach((message, index) => {
    if (message.role !== 'system') others.push(index);
  });
  const budget = Math.max(0, max - (messages.length - others.length));
  let first = Math.max(0, others.length - budget);
  while (first < others.length && messages[others[first]!]!.role === 'tool') first++;
  if (first === 0) return [...messages];
  const cut = first < others.length ? others[first]! : messages.length;
  return messages.filter((message, index) => message.role === 'system' || index >= cut);
}
