import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';

/** SSE responses open on one app, counted by the writer itself (the metrics gauge reads it). */
export interface OpenStreams {
  count: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    sseStreams: OpenStreams;
  }
}

/**
 * Server-Sent Events over one response: `data: <json>\n\n` frames, a `: ping` comment when the
 * stream has been quiet for the heartbeat interval (proxies drop idle streams), back-pressure
 * honoured, and nothing written once the client is gone.
 *
 * Frames are coalesced: everything sent in one turn of the event loop goes out as one write, one
 * HTTP chunk and one syscall, flushed on setImmediate, after the I/O callbacks of the turn and
 * before it waits for more. A provider packet often carries many tokens, and the run's terminal
 * event follows its last token a few ticks later: flushed on process.nextTick instead, they left in
 * two writes, and a write costs ~20 µs on loopback, as much as parsing a dozen of the provider's
 * chunks (issue #13). The headers leave with the first frame rather than in a write of their own.
 */
export class SseWriter {
  private readonly res: ServerResponse;
  private readonly heartbeat: NodeJS.Timeout;
  private gone = false;
  /** Anything (headers included) written to the socket yet. writeHead only prepares the headers. */
  private written = false;
  private pending = '';
  private scheduled = false;
  /** Set while the socket buffer is full: senders wait on it. */
  private drained: Promise<void> | null = null;

  constructor(reply: FastifyReply, heartbeatSeconds: number, extraHeaders: Record<string, string> = {}) {
    reply.hijack();
    this.res = reply.raw;
    const headers: Record<string, string | number | string[]> = {};
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) headers[name] = value;
    }
    // Set on the response (not only written): the metrics leave SSE responses out of the duration histogram by it.
    this.res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    Object.assign(headers, extraHeaders, {
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    this.res.writeHead(200, headers);
    const streams = reply.server.sseStreams;
    streams.count++;
    this.res.once('close', () => {
      streams.count--;
      this.gone = true;
      clearTimeout(this.heartbeat);
    });
    this.heartbeat = setTimeout(this.ping, heartbeatSeconds * 1000);
    // Headers go out at the end of this tick even when no frame is ready by then.
    this.schedule();
  }

  /** True once the client disconnected or the stream was ended. */
  get closed(): boolean {
    return this.gone || this.res.writableEnded;
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  /**
   * Queues one event; `id` (run_id:seq) lets a client resume with Last-Event-ID. Returns a promise
   * only while the client reads slower than we write: await it before sending more.
   */
  send(event: object, id?: string): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.pending += id === undefined ? `data: ${JSON.stringify(event)}\n\n` : `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`;
    this.schedule();
    return this.drained ?? undefined;
  }

  /**
   * Queues one `data:` frame whose text is already encoded (a surface with its own JSON, or
   * `[DONE]`), with an `event:` line when the surface names its events (OpenAI Responses).
   */
  sendData(data: string, event?: string): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.pending += event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
    this.schedule();
    return this.drained ?? undefined;
  }

  end(): void {
    clearTimeout(this.heartbeat);
    if (this.closed) return;
    const rest = this.pending;
    this.pending = '';
    if (rest === '') this.res.end();
    else this.res.end(rest);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = () => {
    this.scheduled = false;
    if (this.closed) return;
    if (this.pending === '') {
      if (!this.written) this.res.flushHeaders();
      this.written = true;
      return;
    }
    const frames = this.pending;
    this.pending = '';
    this.written = true;
    this.heartbeat.refresh();
    if (!this.res.write(frames) && this.drained === null) {
      this.drained = new Promise<void>((resolve) => {
        const done = () => {
          this.res.off('drain', done);
          this.res.off('close', done);
          this.drained = null;
          resolve();
        };
        this.res.on('drain', done);
        this.res.on('close', done);
      });
    }
  };

  private readonly ping = () => {
    if (this.closed) return;
    this.pending += ': ping\n\n';
    this.flush();
  };
}
