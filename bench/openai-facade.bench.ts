// The OpenAI-compatible facade's server CPU per request against the native route, in one run:
// one chassis and one fake upstream (text50: a 50-token answer), the same prompt through
// POST /api/v1/agent/completion and POST /v1/chat/completions, JSON and streamed. The two routes
// take turns (native, facade, native, facade …) so drift on a shared machine falls on both; the
// figure to read is the ratio facade / native (target: ≤ 1, within noise).
//
//   npm run build && npx tsx bench/openai-facade.bench.ts [--seconds 3] [--rounds 2] [--concurrency 8]
//
// Every answer is checked (content equal to the 50 words, a finished stream); a failure exits 1.
//
// Second, quieter measure: the same two routes in this process through app.inject() with the model
// client stubbed (no sockets, no upstream), CPU of this process per request. It isolates the
// routes' own work (request mapping, run start, encoding), which is what the facade adds.

import { writeFileSync } from 'node:fs';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { ModelClient } from '../src/model/index.js';
import { parseArgs } from 'node:util';
import type { Dispatcher } from 'undici';
import { ANSWER, chassisExchange, WrongAnswer, type Exchange, type Transport } from './exchanges.js';
import { runLoad } from './load.js';
import { startChassisProcess, startFakeProcess } from './processes.js';
import { sseData } from './sse-frames.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '8' } },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);

const PROMPT = 'Please answer in fifty words. What is 2 + 2?';

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new WrongAnswer(message);
}

/** One Chat Completions request, checked as strictly as the native one. */
function facadeExchange(transport: Transport): Exchange {
  const body = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: PROMPT }], ...(transport === 'sse' ? { stream: true } : {}) });
  const request = (client: Dispatcher) => client.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
  if (transport === 'json') {
    return async (client) => {
      const response = await request(client);
      const answer = (await response.body.json()) as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] };
      check(response.statusCode === 200, `HTTP ${response.statusCode}`);
      check(answer.choices?.[0]?.message?.content === ANSWER, 'content is not the 50-word answer');
      check(answer.choices[0]!.finish_reason === 'stop', 'finish_reason');
      return undefined;
    };
  }
  return async (client, hooks) => {
    const start = performance.now();
    const response = await request(client);
    check(response.statusCode === 200, `HTTP ${response.statusCode}`);
    let content = '';
    let ttft: number | undefined;
    let finished = false;
    let done = false;
    for await (const data of sseData(response.body)) {
      check(!done, 'a frame after [DONE]');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as { choices: { delta: { content?: string }; finish_reason: string | null }[]; error?: unknown };
      check(chunk.error === undefined, 'error frame');
      const choice = chunk.choices[0]!;
      if (choice.delta.content) {
        if (ttft === undefined) {
          ttft = performance.now() - start;
          hooks?.firstToken?.();
        }
        content += choice.delta.content;
      }
      if (choice.finish_reason !== null) finished = choice.finish_reason === 'stop';
    }
    check(done && finished, 'stream ended without finish_reason stop and [DONE]');
    check(content === ANSWER, 'joined deltas are not the 50-word answer');
    return ttft;
  };
}

const fake = await startFakeProcess('text50');
const chassis = await startChassisProcess({ upstreamUrl: fake.url });
const rows: Array<{ transport: Transport; route: 'native' | 'facade'; round: number; cpuMsPerRequest: number; requestsPerSecond: number; p50Ms: number; failures: number }> = [];
let failed = false;
try {
  // JIT and pools warm for both routes before anything is measured: the first route measured would pay for it otherwise.
  for (const transport of ['json', 'sse'] as const) {
    for (const exchange of [chassisExchange('text50', transport), facadeExchange(transport)]) {
      await runLoad({ origin: chassis.origin, exchange, concurrency, warmupMs: 1500, durationMs: 200, serverPid: chassis.pid });
    }
  }
  for (const transport of ['json', 'sse'] as const) {
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? (['native', 'facade'] as const) : (['facade', 'native'] as const);
      for (const route of order) {
        const result = await runLoad({
          origin: chassis.origin,
          exchange: route === 'native' ? chassisExchange('text50', transport) : facadeExchange(transport),
          concurrency,
          warmupMs: 500,
          durationMs: seconds * 1000,
          serverPid: chassis.pid,
          upstreamPid: fake.pid,
        });
        if (result.failures + result.warmupFailures > 0) {
          failed = true;
          console.error(route, transport, result.failureSamples);
        }
        rows.push({ transport, route, round, cpuMsPerRequest: result.serverCpuMsPerRequest, requestsPerSecond: result.requestsPerSecond, p50Ms: result.latencyMs.p50, failures: result.failures });
        console.log(`${transport} ${route} round ${round}: ${result.serverCpuMsPerRequest.toFixed(3)} ms CPU/req, ${Math.round(result.requestsPerSecond)} req/s`);
      }
    }
  }
} finally {
  await chassis.stop();
  await fake.stop();
}

/** CPU µs per request of each route inside this process (median of alternating rounds). */
async function inProcess(): Promise<Record<Transport, { native: number; facade: number }>> {
  const words = ANSWER.split(/(?<= )/);
  const model: ModelClient = {
    async *call(request) {
      // As the real client does with a paced provider: a batch per token when streaming, the whole text as one delta otherwise.
      if (request.stream) for (const word of words) yield [{ type: 'content', text: word }];
      else yield [{ type: 'content', text: ANSWER }];
      yield [{ type: 'end', message: { role: 'assistant', content: ANSWER }, finishReason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 } }];
    },
    async close() {},
  };
  const app = await buildApp(loadConfig({ ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'warn', MAX_CONCURRENT_RUNS: '100000' }), { model, logStream: { write() {} } });
  await app.ready();
  const measure = async (url: string, body: string, n: number) => {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const response = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body });
      const text = response.body;
      const complete = text.includes(JSON.stringify(ANSWER)) || text.endsWith('data: [DONE]\n\n') || text.includes('"type":"done"');
      if (response.statusCode !== 200 || !complete) throw new WrongAnswer(`HTTP ${response.statusCode}: ${text.slice(0, 120)}`);
    }
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
  const out = {} as Record<Transport, { native: number; facade: number }>;
  for (const transport of ['json', 'sse'] as const) {
    const stream = transport === 'sse' ? { stream: true } : {};
    const nativeBody = JSON.stringify({ messages: [{ role: 'user', content: PROMPT }], ...stream });
    const facadeBody = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: PROMPT }], ...stream });
    await measure('/api/v1/agent/completion', nativeBody, 2000);
    await measure('/v1/chat/completions', facadeBody, 2000);
    const native: number[] = [];
    const facade: number[] = [];
    for (let round = 0; round < 2 * rounds + 1; round++) {
      native.push(await measure('/api/v1/agent/completion', nativeBody, 2000));
      facade.push(await measure('/v1/chat/completions', facadeBody, 2000));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    out[transport] = { native: Math.round(median(native)), facade: Math.round(median(facade)) };
  }
  await app.close();
  return out;
}
const local = await inProcess();

const mean = (transport: Transport, route: string) => {
  const picked = rows.filter((row) => row.transport === transport && row.route === route);
  return picked.reduce((sum, row) => sum + row.cpuMsPerRequest, 0) / picked.length;
};
const summary = (['json', 'sse'] as const).map((transport) => {
  const native = mean(transport, 'native');
  const facade = mean(transport, 'facade');
  return { transport, nativeCpuMs: Number(native.toFixed(3)), facadeCpuMs: Number(facade.toFixed(3)), ratio: Number((facade / native).toFixed(2)) };
});
const markdown = [
  `c=${concurrency}, ${rounds} alternating rounds of ${seconds} s per route, one chassis process (server CPU ms per request, mean of rounds):`,
  '',
  '| transport | native /api/v1/agent/completion | facade /v1/chat/completions | facade / native |',
  '|---|---|---|---|',
  ...summary.map((row) => `| ${row.transport} | ${row.nativeCpuMs} | ${row.facadeCpuMs} | ${row.ratio} |`),
  '',
  `In this process through app.inject(), model stubbed (route work only; CPU µs per request, median of ${2 * rounds + 1} alternating rounds of 2,000):`,
  '',
  '| transport | native | facade | facade / native |',
  '|---|---|---|---|',
  ...(['json', 'sse'] as const).map((transport) => `| ${transport} | ${local[transport].native} | ${local[transport].facade} | ${(local[transport].facade / local[transport].native).toFixed(2)} |`),
].join('\n');
console.log(markdown);
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ rows, summary, inProcess: local, markdown }));
process.exit(failed ? 1 : 0);
