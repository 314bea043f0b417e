/**
 * What a run's code asks of the switch that stops it: the part of AbortSignal it uses, so an
 * AbortSignal fits wherever a RunSignal is asked for. A run, and a stream that follows one, have a
 * RunStop instead of an AbortController: on Node 20, creating an AbortSignal and adding and
 * removing one listener through EventTarget cost a run ~10 µs (a twentieth of a stateless JSON
 * request), against well under 1 µs on Node 22 and 24. A tool still gets a real AbortSignal of its
 * own (ToolRegistry.execute).
 */
export interface RunSignal {
  readonly aborted: boolean;
  /** Why it was aborted (a ChassisError for a run); undefined until then. */
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A RunSignal and the switch that aborts it. As with AbortSignal, each listener is called once,
 * in the order added, when it is aborted, and one added after that is never called; any number
 * may listen (no MaxListeners warning to lift for parallel tool calls).
 */
export class RunStop implements RunSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> | null = null;

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    const index = listeners === null ? -1 : listeners.indexOf(listener);
    if (index !== -1) listeners!.splice(index, 1);
  }

  /** Every listener runs even if one throws; the first error is thrown afterwards. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners ?? [];
    this.listeners = null;
    let failure: { error: unknown } | null = null;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== null) throw failure.error;
  }
}
