import type { ChatMessage } from '../model/types.js';

interface Entry {
  /** The session's next_seq when this tail was current. */
  version: number;
  messages: readonly ChatMessage[];
  bytes: number;
}

/**
 * The tail of recently used sessions' histories (the part a turn sends the model), in this
 * process's memory, so continuing a session reads neither rows nor JSON (issue #13). The database
 * stays the truth: an entry is labelled with the history's version (the session's `next_seq`, which
 * every append raises, on any instance), and a turn asks for the version it read under its lease,
 * so an entry is either exactly right or ignored — never stale. Only a commit or a database read
 * fills it. Bounded by an estimate of the bytes it holds (SESSION_HISTORY_MEMORY_MB); the least
 * recently used sessions go first. Stored arrays and messages are shared: callers must not mutate them.
 */
export class RecentHistory {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(sessionId: string, version: number): readonly ChatMessage[] | undefined {
    const entry = this.entries.get(sessionId);
    if (entry === undefined) return undefined;
    // Another instance appended (or this one failed to note its own commit): the tail is old.
    if (entry.version !== version) {
      this.drop(sessionId);
      return undefined;
    }
    // Most recently used last, so eviction takes from the front.
    this.entries.delete(sessionId);
    this.entries.set(sessionId, entry);
    return entry.messages;
  }

  set(sessionId: string, version: number, messages: readonly ChatMessage[]): void {
    this.keep(sessionId, version, messages, sizeOf(messages));
  }

  /**
   * After a commit: `tail` is `from` (the history this turn read) with `added` on its end, cut to
   * the window. While `from` is still this session's entry, only what came and went is sized.
   */
  advance(sessionId: string, from: readonly ChatMessage[], version: number, added: readonly ChatMessage[], tail: readonly ChatMessage[]): void {
    const entry = this.entries.get(sessionId);
    const dropped = from.length + added.length - tail.length;
    const bytes =
      entry !== undefined && entry.messages === from && dropped <= from.length
        ? entry.bytes + sizeOf(added) - sizeOf(from.slice(0, dropped))
        : sizeOf(tail);
    this.keep(sessionId, version, tail, bytes);
  }

  private keep(sessionId: string, version: number, messages: readonly ChatMessage[], bytes: number): void {
    this.drop(sessionId);
    // One session may take at most a quarter of the budget, so a few huge ones cannot flush the rest.
    if (bytes > this.maxBytes / 4) return;
    this.entries.set(sessionId, { version, messages, bytes });
    this.bytes += bytes;
    for (const [id, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(id);
      this.bytes -= entry.bytes;
    }
  }

  drop(sessionId: string): void {
    const entry = this.entries.get(sessionId);
    if (entry === undefined) return;
    this.entries.delete(sessionId);
    this.bytes -= entry.bytes;
  }

  /** For tests and diagnostics. */
  get size(): { sessions: number; bytes: number } {
    return { sessions: this.entries.size, bytes: this.bytes };
  }
}

const sizeOf = (messages: readonly ChatMessage[]) => messages.reduce((sum, message) => sum + approximateBytes(message), 0);

/** Rough heap size of a message: its strings (2 bytes a character at most) plus object overhead. */
function approximateBytes(message: ChatMessage): number {
  let characters = typeof message.content === 'string' ? message.content.length : 0;
  if ('tool_calls' in message) for (const call of message.tool_calls ?? []) characters += call.function.name.length + call.function.arguments.length + call.id.length;
  return 2 * characters + 200;
}
