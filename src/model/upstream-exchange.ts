import type { Dispatcher } from 'undici';
import type { ModelDelta } from './types.js';
import type { UpstreamHeaders } from './upstream-errors.js';

/** How one answer is read, decided by its status and content type. */
export interface AnswerReader {
  /** The deltas of these bytes go to `out`; an error ends the answer (the request is aborted). */
  data(bytes: Buffer, out: ModelDelta[]): Error | null;
  /** The body ended: the last deltas go to `out`; an error ends the answer. */
  end(out: ModelDelta[]): Error | null;
  /** The connection broke mid-body: what to report instead of the transport's error, if anything. */
  lost?(): Error | null;
  /** True once the provider started answering: from then on a call is never retried. */
  readonly started: boolean;
}

/** Picks the reader for an answer once its status and headers are in. */
export type ReaderFor = (statusCode: number, headers: UpstreamHeaders) => AnswerReader;

/** Batches of deltas waiting for the consumer past which the socket is paused. */
const QUEUE_HIGH_WATER = 64;

/**
 * One upstream request as an undici dispatch handler that queues the answer's deltas for an async
 * consumer. It is the least undici offers: no promise for the response, no Readable for the body,
 * no AbortSignal of its own. Against undici.request, the whole server spent 0.84× the instructions
 * per stateless JSON request and 0.76× per stream (bench/build-callgrind.ts, bench/README.md).
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private reader: AnswerReader | null = null;
  private readonly queue: (readonly ModelDelta[])[] = [];
  private ended = false;
  private failure: Error | null = null;
  private waiter: { resolve: (batch: readonly ModelDelta[] | null) => void; reject: (error: Error) => void } | null = null;
  private abortReason: Error | null = null;

  constructor(private readonly readerFor: ReaderFor) {}

  /** True once the provider started answering. */
  get started(): boolean {
    return this.reader?.started ?? false;
  }

  /** The next batch, null when the answer is complete; rejects with what ended it. */
  next(): Promise<readonly ModelDelta[] | null> {
    const batch = this.queue.shift();
    if (batch !== undefined) {
      if (this.queue.length === 0 && this.controller?.paused) this.controller.resume();
      return Promise.resolve(batch);
    }
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops the request (the run was aborted, or the consumer left); the consumer gets `reason`. */
  abort(reason: Error): void {
    if (this.ended || this.failure !== null) return;
    this.abortReason = reason;
    // Stopped means stopped: what was read and not yet taken is dropped.
    this.queue.length = 0;
    this.fail(reason);
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Aborted while the request waited for a connection.
    if (this.abortReason !== null) controller.abort(this.abortReason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders): void {
    // 1xx informational answers come before the real one.
    if (statusCode >= 200) this.reader = this.readerFor(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.reader === null || this.failure !== null) return;
    const out: ModelDelta[] = [];
    const failure = this.reader.data(chunk, out);
    if (out.length > 0) this.push(out);
    if (failure !== null) {
      this.fail(failure);
      controller.abort(failure);
    } else if (this.queue.length >= QUEUE_HIGH_WATER) controller.pause();
  }

  onResponseEnd(): void {
    if (this.reader === null || this.failure !== null) return;
    const out: ModelDelta[] = [];
    const failure = this.reader.end(out);
    if (out.length > 0) this.push(out);
    if (failure !== null) this.fail(failure);
    else this.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // After we ended it ourselves, undici reports the abort: the consumer already has the reason.
    if (this.failure === null && !this.ended) this.fail(this.reader?.lost?.() ?? error);
  }

  private push(batch: readonly ModelDelta[]): void {
    const waiter = this.waiter;
    if (waiter === null) this.queue.push(batch);
    else {
      this.waiter = null;
      waiter.resolve(batch);
    }
  }

  private end(): void {
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve(null);
  }

  private fail(error: Error): void {
    this.failure = error;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }
}
