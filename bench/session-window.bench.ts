// How much of a continued turn's cost is its context (issue #13): the same three scenarios as
// sessions.bench.ts (stateless, new session, 64 users continuing their own session; JSON, c=64) in
// one chassis on SQLite, with SESSION_MAX_MESSAGES=4 (the model gets the question and little else)
// and with the default 100. CPU per request at steady state, 3 repetitions, ratios within one.
//
//   npm run build && npx tsx bench/session-window.bench.ts [--reps 3]

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chassisExchange } from './exchanges.js';
import { median, steadyLoad } from './load.js';
import { startChassisProcess, startFakeProcess } from './processes.js';
import { continueExchange, freeList, newSessionExchange, openSessions } from './session-exchanges.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' } } });
const REPS = Number(values.reps);

async function measure(maxMessages: number): Promise<{ newRatio: number; continueRatio: number; failures: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'session-window-'));
  const fake = await startFakeProcess('text50');
  const chassis = await startChassisProcess({
    upstreamUrl: fake.url,
    env: { ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`, SESSION_MAX_MESSAGES: String(maxMessages) },
  });
  const ratios = { new: [] as number[], continue: [] as number[] };
  let failures = 0;
  try {
    const load = { origin: chassis.origin, concurrency: 64, serverPid: chassis.pid, warmupMs: 500, durationMs: 3000 };
    for (let rep = 0; rep < REPS; rep++) {
      const stateless = await steadyLoad({ ...load, exchange: chassisExchange('text50', 'json') });
      const fresh = await steadyLoad({ ...load, exchange: newSessionExchange(false) });
      const continued = await steadyLoad({ ...load, exchange: continueExchange(false, freeList(await openSessions(chassis.origin, 64))) });
      failures += stateless.failures + fresh.failures + continued.failures;
      ratios.new.push(fresh.cpuMsPerRequest / stateless.cpuMsPerRequest);
      ratios.continue.push(continued.cpuMsPerRequest / stateless.cpuMsPerRequest);
    }
  } finally {
    await chassis.stop();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { newRatio: median(ratios.new), continueRatio: median(ratios.continue), failures };
}

async function main(): Promise<number> {
  const loadStart = loadavg()[0]!;
  const short = await measure(4);
  const long = await measure(100);
  const markdown = [
    `CPU per turn against the 1-message stateless turn (JSON, c=64, SQLite, ${REPS} repetitions, medians of ratios within one); 1-minute load average ${loadStart.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after.`,
    '',
    '| SESSION_MAX_MESSAGES | new session / stateless | continuing / stateless |',
    '|---|---|---|',
    `| 4 (the question and little else) | ${short.newRatio.toFixed(2)}× | ${short.continueRatio.toFixed(2)}× |`,
    `| 100 (the default; the sessions grow past it) | ${long.newRatio.toFixed(2)}× | ${long.continueRatio.toFixed(2)}× |`,
  ].join('\n');
  process.stdout.write(`${markdown}\n`);
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ short, long, markdown }));
  return short.failures + long.failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`session-window bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
