// Server-side sessions against the stateless (client-side `messages`) path, in the same chassis
// process and the same run, so every ratio is taken on one machine state (issue #13):
//
// - stateless vs new session per request vs continuing one session per user, JSON and SSE, c=64;
//   continuing also against the same turn done statelessly (the client sends the 99 messages the
//   continued sessions give the model at SESSION_MAX_MESSAGES=100);
// - continuing a session that holds 1,000 messages vs one that holds 10 (c=8);
// - 64 users each continuing their own session: max and median latency, errors; beside it the
//   same measures for the stateless path and for the bare yardstick (bench/bare-server.ts), the
//   tail any server gets from this harness;
// - 1,000 clients each opening a new session at once, against 1,000 stateless requests at once;
//
// on SQLite (the default) and PostgreSQL (skipped when not reachable at TEST_PG_URL).
// Scenarios are interleaved and repeated (REPS), each ratio is taken within one repetition, and the
// median over repetitions is reported; CPU is the chassis's utime+stime per request. The stateless
// turn is measured before and after the session scenarios of a repetition, and a session ratio
// divides by the mean of the two: this VM's speed drifts between 3 s windows (stateless JSON read
// 0.24 and 0.51 ms in consecutive repetitions), and a drift across the bracket cancels.
//
//   npm run build && npx tsx bench/sessions.bench.ts [--seconds 2] [--reps 5] [--no-postgres]

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Pool } from 'undici';
import { ANSWER, chassisExchange, type Exchange } from './exchanges.js';
import { cpuMs } from './proc-stats.js';
import { median, steadyLoad, type Measured } from './load.js';
import { repoRoot, startBareProcess, startChassisProcess, startFakeProcess } from './processes.js';
import { postgresSchema } from './postgres-schema.js';
import { continueExchange, freeList, newSessionExchange, PROMPT, type SessionSource } from './session-exchanges.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    'warmup-seconds': { type: 'string', default: '0.5' },
    reps: { type: 'string', default: '5' },
    'no-postgres': { type: 'boolean', default: false },
  },
});
const durationMs = Number(args.seconds) * 1000;
const warmupMs = Number(args['warmup-seconds']) * 1000;
const REPS = Number(args.reps);
const C = 64;
const C_LONG = 8;
const BURST = 1000;

const log = (line: string) => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// Seeding: sessions of a given length are written straight into the chassis's database (a turn
// through HTTP adds two messages, so 1,000 would take 500 turns each). Same rows a turn writes.

const answerMessage = { role: 'assistant', content: ANSWER };
const userMessage = { role: 'user', content: PROMPT };
/** What a continued session at SESSION_MAX_MESSAGES=100 gives the model before the question: the last 99 of its turns. */
const SAME_HISTORY = Array.from({ length: 99 }, (_, i) => (i % 2 === 0 ? answerMessage : userMessage));

interface Seeder {
  seed(count: number, messages: number): Promise<string[]>;
  close(): Promise<void>;
}

function seedRows(messages: number) {
  const id = randomBytes(16).toString('base64url');
  const now = Date.now();
  const rows = Array.from({ length: messages }, (_, i) => ({
    session_id: id,
    seq: i + 1,
    message: JSON.stringify(i % 2 === 0 ? userMessage : answerMessage),
    created_at: now,
  }));
  return { id, now, rows };
}

function sqliteSeeder(file: string): Seeder {
  const db = new SQLite(file);
  db.pragma('busy_timeout = 10000');
  const insertSession = db.prepare(
    `insert into sessions (id, owner_id, is_public, whitelist, blacklist, acl_version, message_count, next_seq, created_at, updated_at) values (?, null, 0, '[]', '[]', 0, ?, ?, ?, ?)`,
  );
  const insertMessage = db.prepare('insert into session_messages (session_id, seq, message, created_at) values (?, ?, ?, ?)');
  return {
    async seed(count, messages) {
      const ids: string[] = [];
      db.transaction(() => {
        for (let s = 0; s < count; s++) {
          const { id, now, rows } = seedRows(messages);
          insertSession.run(id, messages, messages + 1, now, now);
          for (const row of rows) insertMessage.run(row.session_id, row.seq, row.message, row.created_at);
          ids.push(id);
        }
      })();
      return ids;
    },
    async close() {
      db.close();
    },
  };
}

function postgresSeeder(url: string): Seeder {
  const client = new pg.Client({ connectionString: url });
  const connected = client.connect();
  return {
    async seed(count, messages) {
      await connected;
      const ids: string[] = [];
      await client.query('begin');
      for (let s = 0; s < count; s++) {
        const { id, now, rows } = seedRows(messages);
        await client.query(
          `insert into sessions (id, owner_id, is_public, whitelist, blacklist, acl_version, message_count, next_seq, created_at, updated_at) values ($1, null, 0, '[]', '[]', 0, $2, $3, $4, $4)`,
          [id, messages, messages + 1, now],
        );
        await client.query(
          'insert into session_messages (session_id, seq, message, created_at) select $1, s, m, $2 from unnest($3::int[], $4::text[]) as t(s, m)',
          [id, now, rows.map((row) => row.seq), rows.map((row) => row.message)],
        );
        ids.push(id);
      }
      await client.query('commit');
      return ids;
    },
    async close() {
      await client.end();
    },
  };
}


// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** N requests started at once, each on its own connection: wall time until all have answered, and server CPU. */
async function burst(origin: string, exchange: Exchange, serverPid: number): Promise<{ wallMs: number; cpuMsPerRequest: number; failures: number; maxMs: number; p50Ms: number }> {
  const pool = new Pool(origin, { connections: BURST, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const cpu0 = cpuMs(serverPid);
  const t0 = performance.now();
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: BURST }, async () => {
      try {
        await exchange(pool);
        latencies.push(performance.now() - t0);
      } catch {
        failures++;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = cpuMs(serverPid) - cpu0;
  await pool.close();
  return { wallMs, cpuMsPerRequest: cpu / BURST, failures, maxMs: Math.max(...latencies), p50Ms: median(latencies) };
}

type ScenarioName =
  | 'bare json'
  | 'bare sse'
  | 'stateless json'
  | 'stateless json, again'
  | 'stateless sse, again'
  | 'stateless json, 99-msg history'
  | 'stateless sse, 99-msg history'
  | 'new session json'
  | 'continue json'
  | 'stateless sse'
  | 'new session sse'
  | 'continue sse'
  | 'continue 10-msg json'
  | 'continue 1000-msg json';

async function backend(name: 'sqlite' | 'postgres', databaseUrl: string, seeder: () => Seeder) {
  const fake = await startFakeProcess('text50');
  const chassis = await startChassisProcess({ upstreamUrl: fake.url, env: { ENABLE_PERSISTENCE: 'true', DATABASE_URL: databaseUrl } });
  // The yardstick of bare.bench.ts on the same fake: the latency tail this harness gives a server
  // with no framework, no sessions and no database (three processes share two cores).
  const bare = await startBareProcess(fake.url);
  const seeds = seeder();
  const runs: Record<ScenarioName, Measured[]> = {
    'bare json': [],
    'bare sse': [],
    'stateless json': [],
    'stateless json, again': [],
    'stateless json, 99-msg history': [],
    'stateless sse, 99-msg history': [],
    'new session json': [],
    'continue json': [],
    'stateless sse': [],
    'stateless sse, again': [],
    'new session sse': [],
    'continue sse': [],
    'continue 10-msg json': [],
    'continue 1000-msg json': [],
  };
  try {
    const load = async (scenario: ScenarioName, exchange: Exchange, concurrency: number, server: { origin: string; pid: number } = chassis) => {
      const measured = await steadyLoad({ origin: server.origin, exchange, concurrency, serverPid: server.pid, warmupMs, durationMs });
      runs[scenario].push(measured);
      log(
        `  ${name} ${scenario.padEnd(24)} ${measured.requestsPerSecond.toFixed(0).padStart(5)} req/s  cpu ${measured.cpuMsPerRequest.toFixed(3)} ms/req  ` +
          `p50 ${measured.p50.toFixed(1)} p99 ${measured.p99.toFixed(1)} max ${measured.max.toFixed(1)} ms  failures ${measured.failures}`,
      );
      for (const sample of measured.failureSamples) log(`    failure: ${sample}`);
    };
    // Long sessions are reused across repetitions (they grow by 2 messages a turn: ~1,000 stays ~1,000);
    // short ones are used round-robin, many of them, so each stays between 10 and ~30 messages.
    const long = await seeds.seed(C_LONG, 1000);
    const short = await seeds.seed(1500, 10);
    let nextShort = 0;
    const shortSource: SessionSource = { take: () => short[nextShort++ % short.length], give: () => undefined };

    for (let rep = 0; rep < REPS; rep++) {
      log(`  repetition ${rep + 1}/${REPS}`);
      for (const stream of [false, true]) {
        const t = stream ? 'sse' : 'json';
        await load(`bare ${t}`, chassisExchange('text50', t), C, bare);
        await load(`stateless ${t}`, chassisExchange('text50', t), C);
        await load(`new session ${t}`, newSessionExchange(stream), C);
        // 64 users, each continuing their own session made for this repetition.
        const own = await seeds.seed(C, 2);
        await load(`continue ${t}`, continueExchange(stream, freeList(own)), C);
        await load(`stateless ${t}, again`, chassisExchange('text50', t), C);
        await load(`stateless ${t}, 99-msg history`, chassisExchange('text50', t, SAME_HISTORY), C);
      }
      await load('continue 10-msg json', continueExchange(false, shortSource), C_LONG);
      await load('continue 1000-msg json', continueExchange(false, freeList(long)), C_LONG);
    }

    log(`  ${name} burst: ${BURST} clients at once`);
    const burstStateless = await burst(chassis.origin, chassisExchange('text50', 'json'), chassis.pid);
    const burstNew = await burst(chassis.origin, newSessionExchange(false), chassis.pid);
    log(`    stateless: all answered in ${burstStateless.wallMs.toFixed(0)} ms (p50 ${burstStateless.p50Ms.toFixed(0)} ms), cpu ${burstStateless.cpuMsPerRequest.toFixed(3)} ms/req, failures ${burstStateless.failures}`);
    log(`    new session: all answered in ${burstNew.wallMs.toFixed(0)} ms (p50 ${burstNew.p50Ms.toFixed(0)} ms), cpu ${burstNew.cpuMsPerRequest.toFixed(3)} ms/req, failures ${burstNew.failures}`);

    const ratio = (a: ScenarioName, b: ScenarioName) => median(runs[a].map((run, i) => run.cpuMsPerRequest / runs[b][i]!.cpuMsPerRequest));
    // Against the stateless turn measured before and after it in the same repetition.
    const bracketed = (a: ScenarioName, t: 'json' | 'sse') =>
      median(runs[a].map((run, i) => run.cpuMsPerRequest / ((runs[`stateless ${t}`][i]!.cpuMsPerRequest + runs[`stateless ${t}, again`][i]!.cpuMsPerRequest) / 2)));
    const med = (scenario: ScenarioName, key: keyof Omit<Measured, 'failureSamples'>) => median(runs[scenario].map((run) => run[key]));
    const scenarios = Object.fromEntries(
      (Object.keys(runs) as ScenarioName[]).map((scenario) => [
        scenario,
        {
          cpuMsPerRequest: med(scenario, 'cpuMsPerRequest'),
          requestsPerSecond: med(scenario, 'requestsPerSecond'),
          p50Ms: med(scenario, 'p50'),
          p99Ms: med(scenario, 'p99'),
          maxMs: med(scenario, 'max'),
          failures: runs[scenario].reduce((sum, run) => sum + run.failures, 0),
          runs: runs[scenario],
        },
      ]),
    );
    const worstOverMedian = (tail: 'max' | 'p99', ...scenarios: ScenarioName[]) => Math.max(...scenarios.flatMap((scenario) => runs[scenario].map((run) => run[tail] / run.p50)));
    return {
      scenarios,
      ratios: {
        newVsStatelessJson: bracketed('new session json', 'json'),
        continueVsStatelessJson: bracketed('continue json', 'json'),
        newVsStatelessSse: bracketed('new session sse', 'sse'),
        continueVsStatelessSse: bracketed('continue sse', 'sse'),
        continueVsSameStatelessJson: ratio('continue json', 'stateless json, 99-msg history'),
        continueVsSameStatelessSse: ratio('continue sse', 'stateless sse, 99-msg history'),
        long1000VsShort10: ratio('continue 1000-msg json', 'continue 10-msg json'),
        // Worst over the repetitions: one slow request in any of them counts.
        continue64MaxOverMedian: worstOverMedian('max', 'continue json', 'continue sse'),
        continue64P99OverMedian: worstOverMedian('p99', 'continue json', 'continue sse'),
        // The same measures for the stateless path in the same run: what the process and machine do to a tail with no session at all.
        stateless64MaxOverMedian: worstOverMedian('max', 'stateless json', 'stateless sse'),
        stateless64P99OverMedian: worstOverMedian('p99', 'stateless json', 'stateless sse'),
        // And for the bare yardstick: the floor this harness and machine put under any server's tail.
        bare64MaxOverMedian: worstOverMedian('max', 'bare json', 'bare sse'),
        bare64P99OverMedian: worstOverMedian('p99', 'bare json', 'bare sse'),
      },
      burst: { stateless: burstStateless, newSession: burstNew },
      failures: Object.values(runs).flat().reduce((sum, run) => sum + run.failures, 0) + burstStateless.failures + burstNew.failures,
    };
  } finally {
    await seeds.close();
    await bare.stop();
    await chassis.stop();
    await fake.stop();
  }
}

type BackendResult = Awaited<ReturnType<typeof backend>>;

function markdown(results: Record<string, BackendResult>, load: { start: number; end: number }): string {
  const lines = [
    `Sessions vs stateless in one chassis process (ENABLE_PERSISTENCE=true), fake upstream \`text50\`, ${REPS} interleaved repetitions of ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s; ` +
      `medians; each ratio is taken within one repetition, a session ratio against the mean of the stateless turn measured before and after it. Node ${process.version}. 1-minute load average ${load.start.toFixed(2)} before, ${load.end.toFixed(2)} after.`,
    '',
    '| goal (issue #13) | target | ' + Object.keys(results).join(' | ') + ' |',
    '|---|---|' + Object.keys(results).map(() => '---|').join(''),
  ];
  const row = (what: string, target: string, value: (r: BackendResult) => number, limit: number) =>
    lines.push(`| ${what} | ≤ ${target} | ${Object.values(results).map((r) => `${value(r).toFixed(2)}× ${value(r) <= limit ? 'met' : '**not met**'}`).join(' | ')} |`);
  row('CPU/turn, new session vs stateless, JSON c=64', '1.3×', (r) => r.ratios.newVsStatelessJson, 1.3);
  row('CPU/turn, new session vs stateless, SSE c=64', '1.3×', (r) => r.ratios.newVsStatelessSse, 1.3);
  row('CPU/turn, continuing vs stateless, JSON c=64', '1.5×', (r) => r.ratios.continueVsStatelessJson, 1.5);
  row('CPU/turn, continuing vs stateless, SSE c=64', '1.5×', (r) => r.ratios.continueVsStatelessSse, 1.5);
  row('CPU/turn, continuing vs the same turn stateless (client sends the 99 messages), JSON c=64', '1.5×', (r) => r.ratios.continueVsSameStatelessJson, 1.5);
  row('CPU/turn, continuing vs the same turn stateless (client sends the 99 messages), SSE c=64', '1.5×', (r) => r.ratios.continueVsSameStatelessSse, 1.5);
  row('CPU/turn, continuing 1,000 vs 10 messages, c=8', '1.2×', (r) => r.ratios.long1000VsShort10, 1.2);
  row('64 users continuing their own session: max / median latency', '4×', (r) => r.ratios.continue64MaxOverMedian, 4);
  const reference = (what: string, value: (r: BackendResult) => number) => lines.push(`| (for reference, no goal) ${what} | | ${Object.values(results).map((r) => `${value(r).toFixed(2)}×`).join(' | ')} |`);
  reference('64 users continuing their own session: p99 / median latency', (r) => r.ratios.continue64P99OverMedian);
  reference('stateless c=64 in the same run: max / median latency', (r) => r.ratios.stateless64MaxOverMedian);
  reference('stateless c=64 in the same run: p99 / median latency', (r) => r.ratios.stateless64P99OverMedian);
  reference('bare server (bench/bare-server.ts) c=64 in the same run: max / median latency', (r) => r.ratios.bare64MaxOverMedian);
  reference('bare server c=64 in the same run: p99 / median latency', (r) => r.ratios.bare64P99OverMedian);
  lines.push('', '| scenario | ' + Object.keys(results).map((b) => `${b} CPU ms/req | ${b} req/s | ${b} p50 / p99 / max ms`).join(' | ') + ' |');
  lines.push('|---|' + Object.keys(results).map(() => '---|---|---|').join(''));
  const names = Object.keys(Object.values(results)[0]!.scenarios);
  for (const scenario of names) {
    lines.push(
      `| ${scenario} | ` +
        Object.values(results)
          .map((r) => {
            const s = (r.scenarios as Record<string, { cpuMsPerRequest: number; requestsPerSecond: number; p50Ms: number; p99Ms: number; maxMs: number }>)[scenario]!;
            return `${s.cpuMsPerRequest.toFixed(3)} | ${s.requestsPerSecond.toFixed(0)} | ${s.p50Ms.toFixed(1)} / ${s.p99Ms.toFixed(1)} / ${s.maxMs.toFixed(1)}`;
          })
          .join(' | ') +
        ' |',
    );
  }
  lines.push('', `${BURST} clients at once (each its own connection), wall time until all answered:`, '');
  for (const [name, r] of Object.entries(results)) {
    lines.push(
      `- ${name}: stateless ${r.burst.stateless.wallMs.toFixed(0)} ms (${r.burst.stateless.cpuMsPerRequest.toFixed(3)} CPU ms/req), ` +
        `new session ${r.burst.newSession.wallMs.toFixed(0)} ms (${r.burst.newSession.cpuMsPerRequest.toFixed(3)} CPU ms/req); failures ${r.burst.stateless.failures + r.burst.newSession.failures}`,
    );
  }
  lines.push('', 'Scenarios: "bare" = the bare yardstick of bare.bench.ts on the same fake upstream (stateless, no framework, no database); c=64 "continue" = 64 users, each continuing their own session (made for the repetition, growing by 2 messages a turn); "10-msg" = 1,500 sessions of 10 messages taken round-robin (each ends near 10 + 2 × turns/1,500); "1000-msg" = 8 sessions of 1,000 messages. SESSION_MAX_MESSAGES is the default 100, so the 1,000-message turn sends the model 100 messages and the 10-message one 11–30.');
  return lines.join('\n');
}

async function main(): Promise<number> {
  const loadStart = loadavg()[0]!;
  const results: Record<string, BackendResult> = {};
  const dir = mkdtempSync(join(tmpdir(), 'bench-sessions-'));
  try {
    log('sessions on SQLite:');
    const file = join(dir, 'chassis.db');
    results.sqlite = await backend('sqlite', `sqlite:${file}`, () => sqliteSeeder(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const schema = args['no-postgres'] ? undefined : await postgresSchema();
  if (schema !== undefined) {
    try {
      log('sessions on PostgreSQL:');
      results.postgres = await backend('postgres', schema.url, () => postgresSeeder(schema.url));
    } finally {
      await schema.drop();
    }
  }
  const load = { start: loadStart, end: loadavg()[0]! };
  const md = markdown(results, load);
  log(md);
  const report = {
    benchmark: 'sessions',
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, loadAverage: load },
    settings: { reps: REPS, warmupMs, durationMs, concurrency: C, longConcurrency: C_LONG, burst: BURST },
    results,
    markdown: md,
  };
  const out = join(repoRoot, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const date = process.env.BENCH_DATE ?? new Date().toISOString().slice(0, 10);
  writeFileSync(join(out, `sessions-${date}.json`), `${JSON.stringify(report, null, 2)}\n`);
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(report));
  const failures = Object.values(results).reduce((sum, r) => sum + r.failures, 0);
  if (failures > 0) process.stderr.write(`sessions bench: ${failures} requests failed\n`);
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
