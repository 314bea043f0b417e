// Instructions per request with METRICS_ENABLED off and on, counted by valgrind's callgrind, which
// a shared machine does not disturb (two processes on this 2-core VM differ by ±9 % in CPU time
// with metrics off in both). Runs N tool-run requests in-process (app.inject, model stubbed) on the
// built server (npm run build); run it twice per setting and subtract, so start-up cancels out:
//
//   for m in off on; do for n in 200 2200; do
//     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$m.$n node --single-threaded bench/metrics-callgrind.mjs $m $n 2>&1 | grep 'I   refs'
//   done; done
//
// (refs at 2200 − refs at 200) / 2000 = instructions per request. Not part of `npm run bench`
// (about 4 minutes under valgrind); the figures of 2026-12-06 are in bench/README.md.
const which = process.argv[2]; const N = Number(process.argv[3]);
const { buildApp } = await import('../dist/app.js');
const { loadConfig } = await import('../dist/config.js');
const model = {
  async *call(request) {
    const answered = request.messages.some((m) => m.role === 'tool');
    const message = answered ? { role: 'assistant', content: 'four' } : { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'calculate', arguments: '{"expression":"2+2"}' } }] };
    if (answered) yield { type: 'content', text: 'four' };
    yield { type: 'end', message, finishReason: answered ? 'stop' : 'tool_calls', usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
  },
  async close() {},
};
const app = await buildApp(loadConfig({ ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'warn', MAX_CONCURRENT_RUNS: '100000', METRICS_ENABLED: which === 'on' ? 'true' : 'false' }), { model, logStream: { write() {} } });
const body = JSON.stringify({ messages: [{ role: 'user', content: 'What is 2 + 2?' }] });
for (let i = 0; i < N; i++) { const r = await app.inject({ method: 'POST', url: '/api/v1/agent/completion', headers: { 'content-type': 'application/json' }, payload: body }); if (r.statusCode !== 200) throw new Error(r.body); }
await app.close();
process.exit(0);
