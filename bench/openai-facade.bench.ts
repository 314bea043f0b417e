// The OpenAI-compatible facade's server CPU per request against the native route, in one run:
// one chassis and one fake upstream (text50: a 50-token answer), the same prompt through
// POST /api/v1/agent/completion and POST /v1/chat/completions, JSON and streamed. The two routes
// take turns (native, facade, native, facade …) so drift on a shared machine falls on both; the
// figure to read is the ratio facade / native (target: ≤ 1, within noise).
//
//   npm run build && npx tsx bench/openai-facade.bench.ts [--seconds 3] [--rounds 2] [--concurrency 8]
//
// Every answer is checked (content equal to the 50 words, a finished stream); a failure exits 1.

import { writeFileSync } from 'node:fs';
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
].join('\n');
console.log(markdown);
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ rows, summary, markdown }));
process.exit(failed ? 1 : 0);
