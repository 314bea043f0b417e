import { ChassisApiError } from './errors.js';
import { isTerminal, type StreamEvent } from './events.js';
import { readSse } from './sse.js';

export interface StreamOptions {
  /** Stops reading (the run itself goes on server-side; use `cancel()` to stop it). */
  signal?: AbortSignal;
  /** Reconnections after a dropped connection before giving up (default 5). */
  maxResumes?: number;
}

/** What a finished stream adds up to: the same as the JSON answer. */
export interface StreamResult {
  content: string;
  runId: string;
  sessionId: string | null;
  stopReason: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  toolCalls: Array<{ id: string; name: string; arguments: string; result?: string }>;
}

/** How the stream reaches the server; the client provides it (auth headers, refresh). */
export interface StreamTransport {
  /** Follows a run from after `afterSeq`; must resolve to a 2xx event-stream or throw ChassisApiError. */
  follow(runId: string, afterSeq: number, signal: AbortSignal): Promise<Response>;
  cancel(runId: string): Promise<unknown>;
}

const RESUME_DELAYS_MS = [0, 250, 500, 1000, 2000, 4000];

/**
 * One run's events as an async iterable. A connection that drops before the terminal event is
 * reopened with `Last-Event-ID: <run_id>:<seq>` by itself, so the caller sees every event once, in
 * order. `cancel()` stops the run on the server (the stream then ends with a RUN_CANCELLED
 * `error` event); `close()` only stops reading.
 */
export class CompletionStream implements AsyncIterable<StreamEvent> {
  runId: string | null = null;
  sessionId: string | null = null;
  /** Seq of the last event read (events count from 1 within a run). */
  lastSeq = 0;
  /** Times the stream was reopened after a drop. */
  resumes = 0;
  private readonly local = new AbortController();
  private cancelWanted = false;
  private started = false;

  constructor(
    private readonly open: (signal: AbortSignal) => Promise<Response>,
    private readonly transport: StreamTransport,
    private readonly options: StreamOptions = {},
    knownRunId?: string,
  ) {
    if (knownRunId !== undefined) this.runId = knownRunId;
    options.signal?.addEventListener('abort', () => this.local.abort(options.signal?.reason), { once: true });
  }

  /** Stops the run on the server. Before the run id is known, the cancel is sent as soon as it is. */
  async cancel(): Promise<void> {
    this.cancelWanted = true;
    if (this.runId !== null) await this.transport.cancel(this.runId);
  }

  /** Stops reading; the run goes on server-side (resume it later with `client.resume(runId)`). */
  close(): void {
    this.local.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    if (this.started) throw new Error('A CompletionStream can be read once');
    this.started = true;
    const signal = this.local.signal;
    let response = await this.open(signal);
    this.noteHeaders(response);
    const maxResumes = this.options.maxResumes ?? 5;
    let failures = 0;
    for (;;) {
      try {
        for await (const frame of readSse(response.body!, signal)) {
          const event = JSON.parse(frame.data) as StreamEvent;
          const seq = seqOf(frame.id);
          if (seq !== null) {
            // A replay after a resume may start at or before what we had: never yield twice.
            if (seq <= this.lastSeq) continue;
            this.lastSeq = seq;
          }
          failures = 0;
          if (event.type === 'run_started') this.noteRun(event.run_id, event.session_id);
          yield event;
          if (isTerminal(event)) return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof SyntaxError) throw error;
        // a network failure mid-stream: resume below
      }
      if (signal.aborted) return;
      if (this.runId === null) throw new ChassisApiError(0, 'STREAM_LOST', 'The stream ended before the server named its run; it cannot be resumed');
      if (failures >= maxResumes) throw new ChassisApiError(0, 'STREAM_LOST', `The stream of run ${this.runId} dropped and could not be resumed after ${maxResumes} tries`);
      await sleep(RESUME_DELAYS_MS[Math.min(failures, RESUME_DELAYS_MS.length - 1)]!, signal);
      failures++;
      this.resumes++;
      try {
        response = await this.transport.follow(this.runId, this.lastSeq, signal);
      } catch (error) {
        if (signal.aborted) return;
        // The run is gone or not ours: resuming cannot help.
        if (error instanceof ChassisApiError && error.status >= 400 && error.status < 500) throw error;
        response = new Response('');
      }
    }
  }

  /** Reads the whole stream; throws ChassisApiError when the run ends in an `error` event. */
  async result(onEvent?: (event: StreamEvent) => void): Promise<StreamResult> {
    let content = '';
    const toolCalls: StreamResult['toolCalls'] = [];
    for await (const event of this) {
      onEvent?.(event);
      if (event.type === 'content') content += event.content;
      else if (event.type === 'tool_call') toolCalls.push({ id: event.id, name: event.name, arguments: event.arguments });
      else if (event.type === 'tool_result') {
        const call = toolCalls.find((candidate) => candidate.id === event.id);
        if (call !== undefined) call.result = event.result;
      } else if (event.type === 'error') throw new ChassisApiError(0, event.code, event.detail);
      else if (event.type === 'done') {
        return { content, runId: event.run_id, sessionId: event.session_id, stopReason: event.stop_reason, usage: event.usage, toolCalls };
      }
    }
    throw new ChassisApiError(0, 'STREAM_LOST', 'The stream ended without a result');
  }

  private noteHeaders(response: Response): void {
    const runId = response.headers.get('x-run-id');
    if (runId !== null) this.noteRun(runId, response.headers.get('x-session-id'));
  }

  private noteRun(runId: string, sessionId: string | null): void {
    const first = this.runId === null;
    this.runId = runId;
    if (sessionId !== null) this.sessionId = sessionId;
    if (first && this.cancelWanted) void this.transport.cancel(runId).catch(() => undefined);
  }
}

function seqOf(id: string | undefined): number | null {
  if (id === undefined) return null;
  const match = /(\d+)$/.exec(id);
  return match === null ? null : Number(match[1]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
