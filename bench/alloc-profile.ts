// Where the chassis allocates, per request (issue #13): the chassis under c=64 load with V8's
// sampling heap profiler on, counting objects the GC has already collected too (node's
// `--heap-prof` keeps only what is still alive at exit, which says little about the allocation
// rate that scavenges pay for). A module given to the chassis with `--import` starts the sampling
// through the in-process inspector after a warm-up and writes the profile after a few seconds.
//
//   npm run build && npx tsx bench/alloc-profile.ts --mode stateless [--who functionName] [--survivors] [--concurrency 64]
//
// --mode stateless | new-session | continue (server-side sessions on SQLite in a temp directory).
// --who prints the call stacks that allocate inside one function.
// --survivors counts only what no minor GC collected: what outlived a scavenge (the bytes each
// scavenge copies again or promotes, which set its pause and which the next major GC marks), and
// what V8 allocated in the old generation directly (pretenured), which it cannot tell apart.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './load.js';
import { startChassisProcess, startFakeProcess } from './processes.js';
import { modeExchange, profileMode } from './session-exchanges.js';

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'stateless' },
    seconds: { type: 'string', default: '4' },
    who: { type: 'string' },
    survivors: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '64' },
  },
});
const C = Number(args.concurrency);
const WARMUP_MS = 3000;

const SAMPLER = `
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
const out = process.env.ALLOC_PROFILE_OUT;
setTimeout(async () => {
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.ALLOC_PROFILE_SURVIVORS !== '1' });
  const started = Date.now();
  setTimeout(async () => {
    const { profile } = await post('HeapProfiler.stopSampling');
    writeFileSync(out, JSON.stringify({ started, stopped: Date.now(), profile }));
  }, Number(process.env.ALLOC_PROFILE_MS));
}, ${WARMUP_MS}).unref();
`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: ProfileNode[];
}
interface Written {
  started: number;
  stopped: number;
  profile: { head: ProfileNode; samples: { nodeId: number; size: number }[] };
}

const mode = profileMode(args.mode!);
const dir = mkdtempSync(join(tmpdir(), 'alloc-profile-'));
const sampler = join(dir, 'sampler.mjs');
const out = join(dir, 'profile.json');
writeFileSync(sampler, SAMPLER);
const fake = await startFakeProcess('text50');
const chassis = await startChassisProcess({
  upstreamUrl: fake.url,
  nodeArgs: ['--import', sampler],
  env: {
    ALLOC_PROFILE_OUT: out,
    ALLOC_PROFILE_MS: String(Number(args.seconds) * 1000),
    ALLOC_PROFILE_SURVIVORS: args.survivors ? '1' : '0',
    ...(mode === 'stateless' ? {} : { ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${join(dir, 'bench.db')}` }),
  },
});
const finished: number[] = [];
let written: Written;
try {
  const load = closedLoop(chassis.origin, await modeExchange(mode, chassis.origin, 'json', C), C, () => finished.push(Date.now()));
  while (!existsSync(out)) await new Promise((resolve) => setTimeout(resolve, 200));
  await new Promise((resolve) => setTimeout(resolve, 200)); // the file is written at once, but let it land
  await load.stop();
  written = JSON.parse(readFileSync(out, 'utf8')) as Written;
} finally {
  await chassis.stop();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
}

const requests = finished.filter((time) => time >= written.started && time <= written.stopped).length;
const nodes = new Map<number, ProfileNode>();
const parents = new Map<number, ProfileNode | undefined>();
const index = (node: ProfileNode, parent: ProfileNode | undefined) => {
  nodes.set(node.id, node);
  parents.set(node.id, parent);
  for (const child of node.children ?? []) index(child, node);
};
index(written.profile.head, undefined);
const where = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'} ${url.replace(/.*node_modules\//, '').replace(/^file:\/\/.*?\/dist\//, 'dist/')}:${lineNumber + 1}`;
};
const bytes = new Map<string, number>();
const stacks = new Map<string, number>();
let total = 0;
for (const sample of written.profile.samples) {
  const node = nodes.get(sample.nodeId)!;
  bytes.set(where(node), (bytes.get(where(node)) ?? 0) + sample.size);
  total += sample.size;
  if (node.callFrame.functionName === args.who) {
    const chain: string[] = [];
    for (let frame: ProfileNode | undefined = node; frame !== undefined && chain.length < 8; frame = parents.get(frame.id)) chain.push(where(frame));
    stacks.set(chain.join(' < '), (stacks.get(chain.join(' < ')) ?? 0) + sample.size);
  }
}
process.stdout.write(`${mode}: ${requests} requests in the sampled window, ${(total / requests).toFixed(0)} bytes ${args.survivors ? 'that outlived a scavenge' : 'allocated'} per request, c=${C} (sampled every 512 bytes)\n`);
for (const [site, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 40)) process.stdout.write(`${(size / requests).toFixed(0).padStart(7)}  ${site}\n`);
for (const [stack, size] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 8)) process.stdout.write(`\n${(size / requests).toFixed(0).padStart(7)}  ${stack}\n`);
process.exit(0);
