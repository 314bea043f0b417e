import type { LeaseOutcome } from './session-store.js';

const POLL_MS = 200;

interface Waiter {
  wake: (() => void) | null;
}

/**
 * `on_busy: "enqueue"`: runs that wait for a busy session, first come first served on this
 * instance. Only the head of a session's queue tries to take the lease; it is woken when a run of
 * this instance lets the session go, and polls for runs of other instances. Bounded twice: at most
 * `maxWaiting` runs wait per session, each at most `maxWaitMs`; past either, the caller gets 409.
 */
export class SessionQueue {
  private readonly queues = new Map<string, Waiter[]>();
  private waitingCount = 0;

  constructor(
    private readonly maxWaiting: number,
    private readonly maxWaitMs: number,
  ) {}

  async waitTurn(sessionId: string, tryAcquire: () => Promise<LeaseOutcome>): Promise<LeaseOutcome | { status: 'queue_full' }> {
    let queue = this.queues.get(sessionId);
    if (queue === undefined) {
      queue = [];
      this.queues.set(sessionId, queue);
    }
    if (queue.length >= this.maxWaiting) return { status: 'queue_full' };
    const me: Waiter = { wake: null };
    queue.push(me);
    this.waitingCount++;
    const deadline = Date.now() + this.maxWaitMs;
    let last: LeaseOutcome = { status: 'busy', holder: null };
    try {
      for (;;) {
        if (queue[0] === me) {
          last = await tryAcquire();
          if (last.status !== 'busy') return last;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) return last;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(POLL_MS, remaining));
          me.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        me.wake = null;
      }
    } finally {
      this.waitingCount--;
      queue.splice(queue.indexOf(me), 1);
      if (queue.length === 0) this.queues.delete(sessionId);
      else queue[0]!.wake?.();
    }
  }

  /** Runs of this instance waiting for a busy session, over all sessions (a metric). */
  get waiting(): number {
    return this.waitingCount;
  }

  /** A run of this instance let the session go: the head of its queue tries now. */
  released(sessionId: string): void {
    this.queues.get(sessionId)?.[0]?.wake?.();
  }
}
