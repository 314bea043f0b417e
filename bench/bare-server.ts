// The yardstick of issue #13: a hand-tuned agent loop with no dependencies and nothing else — no
// auth, no validation, no run log, no persistence, no timers of its own. It answers
// POST /api/v1/agent/completion in the chassis's wire format (the JSON answer, or `data:` events:
// content, tool_call, tool_result, done) and speaks to the upstream's /chat/completions as the
// chassis does, over a keep-alive node:http agent: the same two tools offered in every call (their
// definitions precomputed as one JSON text), `stream_options.include_usage` when streaming, and a
// loop that runs the model's tool calls and calls again until it answers. What the chassis costs
// beyond this is the price of being a product.
//
//   node --import tsx bench/bare-server.ts --upstream http://127.0.0.1:PORT/v1 [--port 0]
// prints {"url": "http://127.0.0.1:PORT"} on its first line once listening.

import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (values.upstream === undefined) throw new Error('--upstream is required');
const upstream = new URL(`${values.upstream.replace(/\/+$/, '')}/chat/completions`);
const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

/** The chassis's two built-in tools, as it offers them to the model (same names, descriptions and schemas). */
const TOOLS_JSON = JSON.stringify([
  {
    type: 'function',
    function: {
      name: 'calculate',
      description: 'Perform a basic arithmetic operation (add, subtract, multiply, divide) on two numbers.',
      parameters: {
        type: 'object',
        required: ['operation', 'a', 'b'],
        properties: {
          operation: {
            anyOf: ['add', 'subtract', 'multiply', 'divide'].map((name) => ({ type: 'string', const: name })),
            description: 'The operation to perform',
          },
          a: { type: 'number', description: 'First operand' },
          b: { type: 'number', description: 'Second operand' },
        },
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: { name: 'get_server_time', description: "Get the server's current date and time (ISO 8601, UTC).", parameters: { type: 'object', properties: {}, additionalProperties: false } },
  },
]);

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

function runTool(call: ToolCall): string {
  if (call.function.name === 'get_server_time') return new Date().toISOString();
  const { operation, a, b } = JSON.parse(call.function.arguments) as { operation: string; a: number; b: number };
  const value = operation === 'add' ? a + b : operation === 'subtract' ? a - b : operation === 'multiply' ? a * b : a / b;
  return String(value);
}

/** Runs the calls and appends them and their results to the conversation; returns the results, in call order. */
function runTools(messages: unknown[], calls: ToolCall[]): string[] {
  messages.push({ role: 'assistant', content: null, tool_calls: calls });
  return calls.map((call) => {
    const result = runTool(call);
    messages.push({ role: 'tool', tool_call_id: call.id, content: result });
    return result;
  });
}

/** A stream's tool_call and tool_result events for the calls just run. */
function toolEvents(calls: ToolCall[], results: string[]): string {
  return calls
    .map(
      (call, index) =>
        `data: ${JSON.stringify({ type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments })}\n\n` +
        `data: ${JSON.stringify({ type: 'tool_result', id: call.id, name: call.function.name, result: results[index] })}\n\n`,
    )
    .join('');
}

function readBody(stream: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.once('end', () => resolve(text));
    stream.once('error', reject);
  });
}

function callUpstream(messages: unknown[], stream: boolean, onResponse: (response: IncomingMessage) => void, onError: (error: Error) => void): void {
  const body = `{"model":"bench-model","messages":${JSON.stringify(messages)},"stream":${stream},"tools":${TOOLS_JSON}${stream ? ',"stream_options":{"include_usage":true}' : ''}}`;
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

function answerJson(res: ServerResponse, messages: unknown[], toolCalls: ToolCall[]): void {
  callUpstream(
    messages,
    false,
    (response) => {
      readBody(response).then((text) => {
        const message = (JSON.parse(text) as { choices: { message: { content: string | null; tool_calls?: ToolCall[] } }[] }).choices[0]!.message;
        if (message.tool_calls !== undefined && message.tool_calls.length > 0) {
          runTools(messages, message.tool_calls);
          answerJson(res, messages, [...toolCalls, ...message.tool_calls]);
          return;
        }
        const out = JSON.stringify({ role: 'assistant', content: message.content, session_id: null, stop_reason: 'stop', ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      }, (error) => fail(res, error));
    },
    (error) => fail(res, error),
  );
}

function answerStream(res: ServerResponse, messages: unknown[]): void {
  callUpstream(
    messages,
    true,
    (response) => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const calls: ToolCall[] = [];
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
          const delta = (JSON.parse(data) as { choices: { delta?: { content?: string; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] } }[] }).choices[0]?.delta;
          if (delta?.content) out += `data: ${JSON.stringify({ type: 'content', content: delta.content })}\n\n`;
          for (const part of delta?.tool_calls ?? []) {
            const call = (calls[part.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
            if (part.id) call.id = part.id;
            call.function.name += part.function?.name ?? '';
            call.function.arguments += part.function?.arguments ?? '';
          }
        }
        if (out !== '') res.write(out);
      });
      response.once('end', () => {
        if (calls.length === 0) {
          res.end('data: {"type":"done","stop_reason":"stop"}\n\n');
          return;
        }
        res.write(toolEvents(calls, runTools(messages, calls)));
        answerStream(res, messages);
      });
      response.once('error', (error) => fail(res, error));
    },
    (error) => fail(res, error),
  );
}

const server = createServer((req, res) => {
  readBody(req).then((text) => {
    const { messages, stream } = JSON.parse(text) as { messages: unknown[]; stream?: boolean };
    if (stream === true) answerStream(res, messages);
    else answerJson(res, messages, []);
  }, (error) => fail(res, error));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
