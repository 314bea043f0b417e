// Loaded into a server process under test (see retainedBytes in server-process.ts): on SIGUSR2 it
// runs a full GC and prints what is still held, on the V8 heap and outside it (buffers), so a test
// measures what the server retains rather than how far V8 has grown its heap, which follows the
// allocation rate, not leaks.
process.on('SIGUSR2', () => {
  globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  process.stderr.write(`retained-after-gc ${heapUsed + external}\n`);
});
