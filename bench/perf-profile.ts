// Whole-process CPU profile with Linux `perf` (issue #13): the chassis under c=64 load, sampled
// by `perf record` at 999 Hz on all its threads — JavaScript by name (`--perf-basic-prof-only-functions`),
// V8 and its GC, native add-ons such as SQLite, libc and the kernel — and summarised as CPU µs
// per request by library and by symbol. The V8 CPU profile (profile.ts) sees only JavaScript and
// charges native code to its JS caller; this shows what SQLite, the allocator and the syscalls cost.
//
//   npm run build && npx tsx bench/perf-profile.ts --mode continue [--seconds 5] [--out a.json] [--against b.json]
//
// --mode stateless | new-session | continue (server-side sessions on SQLite in a temp directory).
// --against prints, per symbol, this run minus an earlier --out file (two scenarios, or two builds).
// --data keeps perf's recording there, for the callers of one symbol (JavaScript frames by name
// while /tmp/perf-<pid>.map lasts): perf report -i FILE --no-children -S SYMBOL -G --stdio
// Needs `perf` (Debian: linux-perf) and kernel.perf_event_paranoid ≤ 2.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './load.js';
import { startChassisProcess, startFakeProcess } from './processes.js';
import { modeExchange, profileMode, type ProfileMode } from './session-exchanges.js';

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'stateless' },
    seconds: { type: 'string', default: '5' },
    out: { type: 'string' },
    against: { type: 'string' },
    data: { type: 'string' },
  },
});
const HZ = 999;
const C = 64;

interface Summary {
  mode: string;
  requests: number;
  /** CPU µs per request by "library symbol". */
  bySymbol: Record<string, number>;
}

async function record(mode: ProfileMode, seconds: number): Promise<Summary> {
  const dir = mkdtempSync(join(tmpdir(), 'perf-profile-'));
  const fake = await startFakeProcess('text50');
  const chassis = await startChassisProcess({
    upstreamUrl: fake.url,
    nodeArgs: ['--perf-basic-prof-only-functions'],
    env: mode === 'stateless' ? {} : { ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${join(dir, 'bench.db')}` },
  });
  const data = args.data ?? join(dir, 'perf.data');
  try {
    let completed = 0;
    const load = closedLoop(chassis.origin, await modeExchange(mode, chassis.origin, 'json', C), C, () => completed++);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = completed;
    const perf = spawn('perf', ['record', '-F', String(HZ), '-g', '-o', data, '-p', String(chassis.pid), '--', 'sleep', String(seconds)], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => perf.on('exit', resolve));
    const requests = completed - before;
    await load.stop();
    if (code !== 0) throw new Error(`perf record exited with ${code}`);
    const report = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', 'dso,sym', '-g', 'none', '-F', 'sample,dso,sym'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const bySymbol: Record<string, number> = {};
    for (const line of report.split('\n')) {
      // "  123  node  [.] v8::internal::…" or "  45  [JIT] tid 123  [.] JS:*name …"
      const match = /^\s*(\d+)\s+(.+?)\s+\[[.k]\]\s+(.*)$/.exec(line);
      if (match === null) continue;
      const library = match[2]!.startsWith('[JIT]') ? '[JIT]' : match[2]!;
      const key = `${library} ${match[3]!.trim()}`;
      bySymbol[key] = (bySymbol[key] ?? 0) + (Number(match[1]) * 1e6) / HZ / requests;
    }
    return { mode, requests, bySymbol };
  } finally {
    await chassis.stop();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const total = (values: Iterable<number>) => [...values].reduce((sum, value) => sum + value, 0);
const libraryOf = (key: string) => key.slice(0, key.indexOf(' '));

function byLibrary(summary: Summary): Map<string, number> {
  const libraries = new Map<string, number>();
  for (const [key, us] of Object.entries(summary.bySymbol)) libraries.set(libraryOf(key), (libraries.get(libraryOf(key)) ?? 0) + us);
  return libraries;
}

function print(summary: Summary, earlier: Summary | undefined): void {
  const line = (label: string, now: number, then: number | undefined) =>
    process.stdout.write(`${now.toFixed(1).padStart(8)}${then === undefined ? '' : `${then.toFixed(1).padStart(8)}${(now - then).toFixed(1).padStart(8)}`}  ${label}\n`);
  process.stdout.write(`${summary.mode}: ${summary.requests} requests in the window; CPU µs per request${earlier === undefined ? '' : ` (this, ${earlier.mode}, difference)`}\n`);
  line('all', total(Object.values(summary.bySymbol)), earlier && total(Object.values(earlier.bySymbol)));
  const libraries = byLibrary(summary);
  const earlierLibraries = earlier && byLibrary(earlier);
  for (const [library, us] of [...libraries].sort((a, b) => b[1] - a[1])) line(library, us, earlierLibraries?.get(library) ?? (earlier && 0));
  process.stdout.write('\n');
  const keys = new Set([...Object.keys(summary.bySymbol), ...Object.keys(earlier?.bySymbol ?? {})]);
  const rows = [...keys].map((key) => ({ key, now: summary.bySymbol[key] ?? 0, then: earlier === undefined ? undefined : (earlier.bySymbol[key] ?? 0) }));
  rows.sort((a, b) => (earlier === undefined ? b.now - a.now : Math.abs(b.now - b.then!) - Math.abs(a.now - a.then!)));
  for (const row of rows.slice(0, 40)) line(row.key.slice(0, 140), row.now, row.then);
}

const mode = profileMode(args.mode!);
const summary = await record(mode, Number(args.seconds));
if (args.out !== undefined) writeFileSync(args.out, JSON.stringify(summary));
print(summary, args.against === undefined ? undefined : (JSON.parse(readFileSync(args.against, 'utf8')) as Summary));
process.exit(0);
