import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';

/**
 * Server-Sent Events over one response: `data: <json>\n\n` frames, a `: ping` comment when the
 * stream has been quiet for the heartbeat interval (proxies drop idle streams), back-pressure
 * honoured, and nothing written once the client is gone.
 */
export class SseWriter {
  private readonly res: ServerResponse;
  private readonly heartbeat: NodeJS.Timeout;
  private gone = false;

  constructor(reply: FastifyReply, heartbeatSeconds: number, extraHeaders: Record<string, string> = {}) {
    reply.hijack();
    this.res = reply.raw;
    const headers: Record<string, string | number | string[]> = {};
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) headers[name] = value;
    }
    Object.assign(headers, extraHeaders, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    this.res.writeHead(200, headers);
    this.res.flushHeaders();
    this.res.once('close', () => {
      this.gone = true;
      clearTimeout(this.heartbeat);
    });
    this.heartbeat = setTimeout(this.ping, heartbeatSeconds * 1000);
  }

  /** True once the client disconnected or the stream was ended. */
  get closed(): boolean {
    return this.gone || this.res.writableEnded;
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  /** One event; `id` (run_id:seq) lets a client resume with Last-Event-ID. */
  async send(event: object, id?: string): Promise<void> {
    await this.write(id === undefined ? `data: ${JSON.stringify(event)}\n\n` : `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  end(): void {
    clearTimeout(this.heartbeat);
    if (!this.closed) this.res.end();
  }

  private readonly ping = () => {
    if (this.closed) return;
    this.res.write(': ping\n\n');
    this.heartbeat.refresh();
  };

  private async write(frame: string): Promise<void> {
    if (this.closed) return;
    this.heartbeat.refresh();
    if (this.res.write(frame)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }
}
