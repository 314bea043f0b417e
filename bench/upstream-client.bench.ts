// What one upstream model call costs the client side, in this process's CPU: the chassis's own
// model client (src/model: undici dispatch with its own handler, our SSE splitter, retries and
// timeouts) against undici fetch, a bare undici.request and node:http that parse the same answers,
// all calling the fake upstream process. It tells what the client's own work (deltas, tool-call
// merging, error handling) costs above a client that does nothing else. Run by `npm run bench`
// (a *.bench.ts script).

import { writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadConfig } from '../src/config.js';
import { createOpenAIModelClient, type ToolSpec } from '../src/model/index.js';
import { chatCompletionsEndpoint } from '../src/model/openai-client.js';
import { builtinTools, ToolRegistry } from '../src/tools/index.js';
import { ANSWER, type Transport } from './exchanges.js';
import { percentiles } from './load.js';
import { startFakeProcess } from './processes.js';
import { sseData } from './sse-frames.js';

const CONCURRENCY = 16;
const WARMUP_MS = 1000;
// The clients take turns in short rounds, so a neighbour's load on this shared machine hits both alike.
const ROUNDS = 3;
const ROUND_MS = 1000;

type Call = (stream: boolean) => Promise<string>;

interface Row {
  client: string;
  transport: Transport;
  calls: number;
  callsPerSecond: number;
  cpuMsPerCall: number;
  latencyP50Ms: number;
}

const registry = new ToolRegistry(30);
for (const tool of builtinTools) registry.register(tool);
const toolSpecs: ToolSpec[] = registry.select(null).specs;
const messages = [{ role: 'user' as const, content: 'Please answer in fifty words. What is 2 + 2?' }];

function chassisClient(upstreamUrl: string): { call: Call; close(): Promise<void> } {
  const client = createOpenAIModelClient(loadConfig({ OPENAI_BASE_URL: upstreamUrl, OPENAI_API_KEY: 'bench' }), 'bench');
  return {
    async call(stream) {
      let content = '';
      for await (const deltas of client.call({ model: 'bench-model', messages, tools: toolSpecs, stream, signal: new AbortController().signal })) {
        for (const delta of deltas) {
          if (delta.type === 'content' && stream) content += delta.text;
          else if (delta.type === 'end' && !stream) content = delta.message.content ?? '';
        }
      }
      return content;
    },
    close: () => client.close(),
  };
}

function requestBody(stream: boolean): string {
  return JSON.stringify({
    model: 'bench-model',
    messages,
    stream,
    tools: toolSpecs,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
}

async function contentOf(stream: boolean, body: AsyncIterable<Uint8Array | string>, json: () => Promise<unknown>): Promise<string> {
  if (!stream) return ((await json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? '';
  let content = '';
  for await (const data of sseData(body)) {
    if (data === '[DONE]') continue;
    const chunk = JSON.parse(data) as { choices: { delta?: { content?: string } }[] };
    const piece = chunk.choices[0]?.delta?.content;
    if (piece) content += piece;
  }
  return content;
}

const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer bench' };

/** undici's fetch with the same keep-alive agent: what fetch and web streams cost over undici.request. */
function fetchClient(upstreamUrl: string): { call: Call; close(): Promise<void> } {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
  const { origin, path } = chatCompletionsEndpoint(upstreamUrl);
  const url = origin + path;
  return {
    async call(stream) {
      const response = await undiciFetch(url, { method: 'POST', headers: HEADERS, body: requestBody(stream), dispatcher, signal: new AbortController().signal });
      if (response.status !== 200 || response.body === null) throw new Error(`HTTP ${response.status}`);
      return contentOf(stream, response.body, () => response.json());
    },
    close: () => dispatcher.close(),
  };
}

/** The least a client can do: one keep-alive request, the body parsed as it comes, nothing else. */
function bareClient(upstreamUrl: string): { call: Call; close(): Promise<void> } {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
  const { origin, path } = chatCompletionsEndpoint(upstreamUrl);
  return {
    async call(stream) {
      const response = await dispatcher.request({ origin, path, method: 'POST', headers: HEADERS, body: requestBody(stream) });
      if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
      return contentOf(stream, response.body, () => response.body.json());
    },
    close: () => dispatcher.close(),
  };
}

/** node:http's client with a keep-alive agent (what bench/bare-server.ts uses), parsing the same way. */
function nodeHttpClient(upstreamUrl: string): { call: Call; close(): Promise<void> } {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1024 });
  const { origin, path } = chatCompletionsEndpoint(upstreamUrl);
  const url = new URL(origin + path);
  return {
    call: (stream) =>
      new Promise<string>((resolve, reject) => {
        const body = requestBody(stream);
        const req = httpRequest(
          { hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { ...HEADERS, 'content-length': Buffer.byteLength(body) } },
          (response) => {
            if (response.statusCode !== 200) return reject(new Error(`HTTP ${response.statusCode}`));
            response.setEncoding('utf8');
            const json = async () => {
              let text = '';
              for await (const chunk of response) text += chunk;
              return JSON.parse(text) as unknown;
            };
            contentOf(stream, response, json).then(resolve, reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: async () => agent.destroy(),
  };
}

interface Sample {
  calls: number;
  cpuMs: number;
  windowMs: number;
  latencies: number[];
}

async function measure(name: string, call: Call, transport: Transport, ms: number): Promise<Sample> {
  const stream = transport === 'sse';
  let running = true;
  const latencies: number[] = [];
  const worker = async () => {
    while (running) {
      const start = performance.now();
      const content = await call(stream);
      if (content !== ANSWER) throw new Error(`${name} ${transport}: wrong answer ${content.slice(0, 60)}`);
      latencies.push(performance.now() - start);
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const workers = Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await new Promise((resolve) => setTimeout(resolve, ms));
  running = false;
  await workers;
  const cpu = process.cpuUsage(cpu0);
  return { calls: latencies.length, cpuMs: (cpu.user + cpu.system) / 1000, windowMs: performance.now() - t0, latencies };
}

async function main(): Promise<void> {
  const fake = await startFakeProcess('text50');
  const rows: Row[] = [];
  try {
    const clients = [
      { name: 'chassis model client (undici dispatch, own SSE parsing)', ...chassisClient(fake.url) },
      { name: 'undici fetch + JSON.parse, no SDK', ...fetchClient(fake.url) },
      { name: 'undici.request + JSON.parse, no SDK', ...bareClient(fake.url) },
      { name: 'node:http request + JSON.parse, no SDK', ...nodeHttpClient(fake.url) },
    ];
    for (const transport of ['json', 'sse'] as const) {
      for (const client of clients) await measure(client.name, client.call, transport, WARMUP_MS);
      const totals = clients.map(() => ({ calls: 0, cpuMs: 0, windowMs: 0, latencies: [] as number[] }));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [index, client] of clients.entries()) {
          const sample = await measure(client.name, client.call, transport, ROUND_MS);
          const total = totals[index]!;
          total.calls += sample.calls;
          total.cpuMs += sample.cpuMs;
          total.windowMs += sample.windowMs;
          total.latencies.push(...sample.latencies);
        }
      }
      for (const [index, client] of clients.entries()) {
        const total = totals[index]!;
        const row: Row = {
          client: client.name,
          transport,
          calls: total.calls,
          callsPerSecond: (total.calls * 1000) / total.windowMs,
          cpuMsPerCall: total.cpuMs / total.calls,
          latencyP50Ms: percentiles(total.latencies).p50,
        };
        rows.push(row);
        process.stdout.write(`  ${row.client}, ${transport}: ${row.cpuMsPerCall.toFixed(3)} ms CPU per call, ${row.callsPerSecond.toFixed(0)} calls/s\n`);
      }
    }
    await Promise.all(clients.map((client) => client.close()));
  } finally {
    await fake.stop();
  }
  const markdown = [
    `Client side of one upstream call (this process's CPU, ${CONCURRENCY} concurrent calls; after ${WARMUP_MS / 1000} s warm-up each, the clients take ${ROUNDS} turns of ${ROUND_MS / 1000} s; the 50-token answer is checked every time):`,
    '',
    '| client | answer | CPU ms/call | calls/s | p50 ms |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.client} | ${r.transport === 'sse' ? 'stream, 50 chunks' : 'JSON'} | ${r.cpuMsPerCall.toFixed(3)} | ${r.callsPerSecond.toFixed(0)} | ${r.latencyP50Ms.toFixed(2)} |`),
  ].join('\n');
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ rows, markdown }));
  else process.stdout.write(`${markdown}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`upstream-client bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
