/** One frame of a text/event-stream: its `id:` (if any) and its joined `data:` lines. */
export interface SseFrame {
  id: string | undefined;
  data: string;
}

/**
 * Splits a text/event-stream body into frames (WHATWG rules that matter here: CRLF/LF/CR line ends,
 * multi-line data, comments ignored). Works on any ReadableStream of bytes, so in browsers and Node.
 */
export async function* readSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseFrame> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let data: string[] = [];
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = lineEnd(buffer)) !== -1) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
        if (line === '') {
          if (data.length > 0) yield { id, data: data.join('\n') };
          data = [];
          id = undefined;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

function lineEnd(text: string): number {
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    // A lone CR at the very end may be the first half of CRLF: wait for the next chunk.
    if (char === '\n' || (char === '\r' && index < text.length - 1)) return index;
  }
  return -1;
}
