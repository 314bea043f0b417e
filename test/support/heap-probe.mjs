// Loaded into a server process under test (see memoryAfterGc in server-process.ts): on SIGUSR2 it
// runs a full GC and prints what is still held, on the V8 heap and outside it (buffers), so a test
// measures what the server retains rather than how far V8 has grown its heap, which follows the
// allocation rate, not leaks. Then it runs a memory-reducing GC (V8's "last resort" flavour) and
// prints the RSS: a plain full GC leaves the pages V8 keeps for reuse resident, and on Node 24 that
// is 60-90 MB more after a busy minute (the young generation at its maximum, pooled pages) that V8
// gives back at once when asked; what stays resident after this one is what the process holds.
import { getHeapStatistics } from 'node:v8';

process.on('SIGUSR2', () => {
  globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  // V8's own pages (its heap's physical size) are reported apart: how much of its young generation
  // V8 keeps committed after this GC varies from run to run, and a leak on the heap shows in the
  // retained figure anyway.
  process.stderr.write(`retained-after-gc ${heapUsed + external} rss ${process.memoryUsage.rss()} heap-physical ${getHeapStatistics().total_physical_size}\n`);
});
