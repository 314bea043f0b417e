import type { ToolCall, Usage } from '../model/types.js';
import type { RunSignal } from '../run-signal.js';

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** One event as clients see it: `type` plus its fields. */
export type RunEvent = Record<string, unknown>;

/**
 * The JSON answer's text and tool calls, read from a run's events: what a JSON client gets and
 * what an idempotent retry gets again, so the two cannot differ.
 */
export function answerOf(events: Iterable<RunEvent>): { content: string; toolCalls: ToolCall[] } {
  let content = '';
  const toolCalls: ToolCall[] = [];
  for (const event of events) {
    if (event.type === 'content') content += String(event.content);
    else if (event.type === 'tool_call') toolCalls.push({ id: String(event.id), type: 'function', function: { name: String(event.name), arguments: String(event.arguments) } });
  }
  return { content, toolCalls };
}

/** Consecutive events of one run; the first is number `firstSeq` (a run's events count from 1). */
export interface EventBatch {
  firstSeq: number;
  events: readonly RunEvent[];
}

export interface RunInfo {
  runId: string;
  ownerId: string | null;
  sessionId: string | null;
  createdAt: number;
}

export interface RunEnd {
  status: Exclude<RunStatus, 'running'>;
  stopReason: string | null;
  usage: Usage | null;
  /** `status` is the HTTP status a JSON client got, so a replay can answer the same. */
  error: { detail: string; code: string; status: number } | null;
}

/** Told of every append and of the end, e.g. to mirror the run to Redis. */
export interface RunObserver {
  appended(log: RunLog, event: RunEvent, seq: number): void;
  ended(log: RunLog): void;
}

/**
 * The events of one run, kept for its lifetime plus a grace period so a client that lost its
 * stream can replay what it missed and then follow live. Appending is an array push and, once per
 * tick, a wake-up of whoever waits: cheap enough to record every token, and a follower wakes once
 * for all the tokens of a provider packet rather than once per token. A finished log is kept by
 * the registry, so what it holds beyond its events is allocated only when used.
 *
 * A tick after the run ends its events are packed into one JSON text. The registry keeps up to
 * RUN_EVENTS_MAX_KEPT events of finished runs (an hour by default): as objects they all lived
 * long enough to move to V8's old generation, where every major GC marked them again. On Node 24
 * keeping them cost a stateless request a sixth to a fifth of its CPU (issue #13; bench/README.md);
 * one string per run is nothing to mark. Whoever reads a packed log (a replay) gets the events
 * parsed back.
 */
export class RunLog {
  /** The events while the run goes on (and for the tick it ends in); null once packed. */
  private live: RunEvent[] | null;
  /** The events of a finished run as one JSON array text, once packed. */
  private packed: string | null = null;
  private packedCount = 0;
  observer: RunObserver | null = null;
  status: RunStatus = 'running';
  end: RunEnd | null = null;
  endedAt: number | null = null;
  /** Followers waiting for the next append; woken together on process.nextTick. */
  private waiters: Array<() => void> | null = null;
  private endListener: ((log: RunLog) => void) | null = null;
  /** This process lets go of a run that goes on elsewhere (it waits for approvals at shutdown). */
  private detached = false;

  /** `recorded`: events of a run taken up from elsewhere (the database), where this log starts. */
  constructor(
    readonly info: RunInfo,
    recorded: readonly RunEvent[] = [],
  ) {
    this.live = recorded.slice();
  }

  /** Event `seq` is `events[seq - 1]`. A finished log's events are parsed again on each read. */
  get events(): readonly RunEvent[] {
    return this.live ?? (JSON.parse(this.packed!) as RunEvent[]);
  }

  get eventCount(): number {
    return this.live === null ? this.packedCount : this.live.length;
  }

  /**
   * True while the run's latest events are approvals (asked for, or decided and not yet resumed):
   * only then can it be waiting, so only then need a status poll ask the approval store.
   */
  get awaitingApproval(): boolean {
    // A finished run waits for nothing (a run that waits for approvals has not finished).
    if (this.live === null) return false;
    for (let index = this.live.length - 1; index >= 0; index--) {
      const type = this.live[index]!.type;
      if (type !== 'approval_decided') return type === 'approval_required';
    }
    return false;
  }

  /** Adds an event; a finished log takes no more (its terminal event stays the last). */
  append(event: RunEvent): void {
    if (this.end !== null) return;
    const live = this.live!;
    live.push(event);
    this.observer?.appended(this, event, live.length);
    this.notify();
  }

  finish(end: RunEnd): void {
    if (this.end !== null) return;
    this.end = end;
    this.status = end.status;
    this.endedAt = Date.now();
    this.observer?.ended(this);
    this.notify();
    const listener = this.endListener;
    this.endListener = null;
    listener?.(this);
    // Not at once: the surfaces read the whole answer from the events as the run ends.
    setImmediate(packLog, this);
  }

  /** Packs the events of a finished log (see the class comment). */
  pack(): void {
    const live = this.live;
    if (live === null) return;
    this.packed = JSON.stringify(live);
    this.packedCount = live.length;
    this.live = null;
  }

  /** Ends the follows of this process without a terminal event: the run is not over, only not here any more. */
  detach(): void {
    this.detached = true;
    this.notify();
  }

  /** The one end listener (the registry's): called at the end, or at once if the run has ended. */
  onEnd(listener: (log: RunLog) => void): void {
    if (this.end !== null) listener(this);
    else this.endListener = listener;
  }

  /** Events after `afterSeq`, then live ones as they come, until the run has ended or `signal` aborts. */
  async *follow(afterSeq: number, signal?: RunSignal): AsyncGenerator<EventBatch> {
    let next = Math.max(0, afterSeq);
    let resume: (() => void) | null = null;
    // One listener for the whole follow, not one per wait (on an AbortSignal, an EventTarget call
    // costs more than a token).
    const onAbort = () => resume?.();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (next < this.eventCount) {
          const firstSeq = next + 1;
          const events = this.events;
          next = events.length;
          yield { firstSeq, events: events.slice(firstSeq - 1, next) };
          continue;
        }
        if (this.end !== null || this.detached || signal?.aborted) return;
        await new Promise<void>((resolve) => {
          resume = resolve;
          (this.waiters ??= []).push(resolve);
        });
        resume = null;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    if (waiters === null) return;
    this.waiters = null;
    process.nextTick(wakeAll, waiters);
  }
}

const packLog = (log: RunLog) => log.pack();

function wakeAll(waiters: Array<() => void>): void {
  for (const resolve of waiters) resolve();
}
