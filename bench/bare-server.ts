// The yardstick of issue #13: a hand-tuned agent endpoint with no dependencies and nothing else —
// no auth, no validation, no run log, no persistence, no tools, no timers of its own. It answers
// POST /api/v1/agent/completion in the chassis's wire format (the JSON answer, or `data:` content
// events and a `done` event), forwarding `messages` to the upstream's /chat/completions over a
// keep-alive node:http agent. What the chassis costs beyond this is the price of being a product.
//
//   node --import tsx bench/bare-server.ts --upstream http://127.0.0.1:PORT/v1 [--port 0]
// prints {"url": "http://127.0.0.1:PORT"} on its first line once listening.

import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (values.upstream === undefined) throw new Error('--upstream is required');
const upstream = new URL(`${values.upstream.replace(/\/+$/, '')}/chat/completions`);
const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

function readBody(stream: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.once('end', () => resolve(text));
    stream.once('error', reject);
  });
}

function callUpstream(body: string, onResponse: (response: IncomingMessage) => void, onError: (error: Error) => void): void {
  const call = request(
    { agent, hostname: upstream.hostname, port: upstream.port, path: upstream.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    onResponse,
  );
  call.once('error', onError);
  call.end(body);
}

function fail(res: ServerResponse, error: unknown): void {
  if (res.headersSent) res.destroy();
  else {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ detail: String(error) }));
  }
}

const server = createServer((req, res) => {
  void readBody(req).then((text) => {
    const { messages, stream } = JSON.parse(text) as { messages: unknown[]; stream?: boolean };
    const body = JSON.stringify({ model: 'bench-model', messages, stream: stream === true });
    callUpstream(
      body,
      (response) => {
        if (stream !== true) {
          void readBody(response).then((answer) => {
            const message = (JSON.parse(answer) as { choices: { message: { content: string } }[] }).choices[0]!.message;
            const out = JSON.stringify({ role: 'assistant', content: message.content, session_id: null, stop_reason: 'stop' });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
            res.end(out);
          }, (error) => fail(res, error));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let rest = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          // Everything one packet brings goes out as one write.
          const frames = (rest + chunk).split('\n\n');
          rest = frames.pop()!;
          let out = '';
          for (const frame of frames) {
            const data = frame.startsWith('data: ') ? frame.slice(6) : '';
            if (data === '' || data === '[DONE]') continue;
            const content = (JSON.parse(data) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content;
            if (content) out += `data: ${JSON.stringify({ type: 'content', content })}\n\n`;
          }
          if (out !== '') res.write(out);
        });
        response.once('end', () => res.end('data: {"type":"done"}\n\n'));
        response.once('error', (error) => fail(res, error));
      },
      (error) => fail(res, error),
    );
  }, (error) => fail(res, error));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
