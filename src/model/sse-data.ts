const LF = 10;
const CR = 13;

/**
 * Splits a text/event-stream body into the data of its events, as the WHATWG SSE parser does:
 * lines end in LF, CRLF or CR (also when a CRLF is split across chunks), `data:` lines of one event
 * are joined with LF, comments and other fields are skipped, a blank line ends the event. Chunks
 * arrive as decoded text; a line split across chunks is kept until its end arrives.
 *
 * It works on strings with indexOf, not byte by byte, because it runs once per upstream token.
 */
export class SseDataSplitter {
  private partial = '';
  private data: string | null = null;
  /** The previous chunk ended in CR: an LF opening this one belongs to the same line end. */
  private afterCr = false;

  /** The data of every event the chunk completes, in order. */
  push(chunk: string): string[] {
    const events: string[] = [];
    let start = 0;
    if (this.afterCr && chunk.charCodeAt(0) === LF) start = 1;
    this.afterCr = false;
    const hasCr = chunk.includes('\r');
    while (start < chunk.length) {
      let end = chunk.indexOf('\n', start);
      if (hasCr) {
        const cr = chunk.indexOf('\r', start);
        if (cr !== -1 && (end === -1 || cr < end)) end = cr;
      }
      if (end === -1) {
        this.partial += chunk.slice(start);
        break;
      }
      let line = chunk.slice(start, end);
      if (this.partial !== '') {
        line = this.partial + line;
        this.partial = '';
      }
      this.line(line, events);
      start = end + 1;
      if (chunk.charCodeAt(end) === CR) {
        if (start === chunk.length) this.afterCr = true;
        else if (chunk.charCodeAt(start) === LF) start++;
      }
    }
    return events;
  }

  /**
   * The body ended: an event still open is delivered (the spec would drop it, but a provider that
   * omits the last blank line should not lose its final chunk; a cut connection errors instead).
   */
  end(): string[] {
    const events: string[] = [];
    if (this.partial !== '') {
      this.line(this.partial, events);
      this.partial = '';
    }
    this.line('', events);
    return events;
  }

  private line(line: string, events: string[]): void {
    if (line === '') {
      if (this.data !== null) events.push(this.data);
      this.data = null;
      return;
    }
    // Field name up to the first colon; one space after it is not part of the value.
    if (!line.startsWith('data')) return;
    let value: string;
    if (line.length === 4) value = '';
    else if (line.charCodeAt(4) !== 58 /* : */) return;
    else value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    this.data = this.data === null ? value : `${this.data}\n${value}`;
  }
}
