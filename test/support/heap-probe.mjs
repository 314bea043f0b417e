// Loaded into a server process under test (see memoryAfterGc in server-process.ts): on SIGUSR2 it
// runs a full GC and prints what is still held, on the V8 heap and outside it (buffers), so a test
// measures what the server retains rather than how far V8 has grown its heap, which follows the
// allocation rate, not leaks. Then it runs a memory-reducing GC (V8's "last resort" flavour) and
// prints the RSS: a plain full GC leaves the pages V8 keeps for reuse resident, and on Node 24 that
// is 60-90 MB more after a busy minute (the young generation at its maximum, pooled pages) that V8
// gives back at once when asked; what stays resident after this one is what the process holds.
//
// V8 gives those pages back from its own threads, after the GC returns: read at once, the RSS was
// up to 28 MB above what it settled at a moment later (and the load baseline read that as growth,
// or hid as much). So the RSS is read once it has not fallen for a few steps.
import { getHeapStatistics } from 'node:v8';

const SETTLE_STEP_MS = 100;
const SETTLE_STEADY_STEPS = 3;
const SETTLE_MAX_MS = 3_000;

process.on('SIGUSR2', () => {
  globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  let rss = process.memoryUsage.rss();
  let waited = 0;
  let steady = 0;
  const settle = () => {
    const now = process.memoryUsage.rss();
    waited += SETTLE_STEP_MS;
    steady = now < rss - 256 * 1024 ? 0 : steady + 1;
    rss = Math.min(rss, now);
    if (steady < SETTLE_STEADY_STEPS && waited < SETTLE_MAX_MS) {
      setTimeout(settle, SETTLE_STEP_MS);
      return;
    }
    // V8's own pages (its heap's physical size) are reported apart: how much of its young
    // generation V8 keeps committed after this GC varies from run to run, and a leak on the heap
    // shows in the retained figure anyway.
    process.stderr.write(`retained-after-gc ${heapUsed + external} rss ${now} heap-physical ${getHeapStatistics().total_physical_size}\n`);
  };
  setTimeout(settle, SETTLE_STEP_MS);
});
