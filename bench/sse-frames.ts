/**
 * The `data:` payloads of a Server-Sent Events body as they arrive, so the caller can time the
 * first token. Both servers measured here write single-line `data: ...` frames separated by a blank
 * line; comment frames (`: ping`) carry no data and are skipped.
 */
export async function* sseData(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of frame.split('\n')) {
        if (line.startsWith('data: ')) yield line.slice(6);
        else if (line.startsWith('data:')) yield line.slice(5);
      }
    }
  }
  if (buffer.trim() !== '') throw new Error(`stream ended inside a frame: ${buffer.slice(0, 80)}`);
}
